/** Pure helpers of the console (no DOM): time spans as the gateway reads them, and durations. */

const UNIT_MS: [RegExp, number][] = [
  [/^(?:milliseconds?|msecs?|ms)$/, 1],
  [/^(?:seconds?|secs?|s)$/, 1000],
  [/^(?:minutes?|mins?|m)$/, 60_000],
  [/^(?:hours?|hrs?|h)$/, 3_600_000],
  [/^(?:days?|d)$/, 86_400_000],
  [/^(?:weeks?|w)$/, 604_800_000],
  [/^(?:years?|yrs?|y)$/, 31_557_600_000],
];

/**
 * A time span such as "2h", "30d" or "90 days" in ms, read as the gateway reads
 * `expirationTimeSpan` (the `ms` package; a bare number is refused), or undefined.
 */
export function parseTimeSpan(text: string): number | undefined {
  if (text.length > 32) return undefined;
  const match = /^\s*((?:\d+)?\.?\d+) *([a-z]+)\s*$/i.exec(text);
  if (!match?.[1] || !match[2]) return undefined;
  const unit = match[2].toLowerCase();
  const factor = UNIT_MS.find(([pattern]) => pattern.test(unit))?.[1];
  if (factor === undefined) return undefined;
  const value = Number(match[1]) * factor;
  return Number.isFinite(value) && value > 0 ? value : undefined;
}

/** 93784 -> "1d 2h 3m 4s"; the two largest non-zero units, or all when `full`. */
export function formatDuration(seconds: number, full = false): string {
  const s = Math.max(0, Math.floor(seconds));
  const parts: string[] = [];
  const units: [string, number][] = [
    ['d', 86_400],
    ['h', 3600],
    ['m', 60],
    ['s', 1],
  ];
  let rest = s;
  for (const [name, size] of units) {
    const count = Math.floor(rest / size);
    rest -= count * size;
    if (count > 0 || (parts.length > 0 && full)) parts.push(`${count}${name}`);
  }
  if (parts.length === 0) return '0s';
  return full ? parts.join(' ') : parts.slice(0, 2).join(' ');
}

/** A time in the reader's locale, with the date. */
export function formatTime(epochSeconds: number): string {
  return new Date(epochSeconds * 1000).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

export function plural(count: number, word: string): string {
  return `${count.toLocaleString()} ${word}${count === 1 ? '' : 's'}`;
}

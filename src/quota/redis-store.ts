import type { RedisClient } from './redis-connection.js';
import type { CounterSpec, QuotaPlan } from './plan.js';
import { demandOf, tokenCounters, type ConsumeMode, type CounterStatus, type Demand, type QuotaDecision, type QuotaStore } from './store.js';
import { BUCKETS_PER_WINDOW, bucketLeavesWindowAt, bucketMs, msUntilAdmits } from './windows.js';

/**
 * The whole quota decision of one request in one round trip: revocation check, then every
 * counter checked, then (only if all admit) every counter counted. Same algorithm as windows.ts.
 *
 * A counter is a hash: one field per bucket index (its count), plus `s`, the sum of those, and
 * `o`, the oldest bucket index present. The common path reads just `s` and `o`; the bucket fields
 * are read only when a bucket has aged out (to drop it) or when the request is denied (to compute
 * when the window admits again).
 *
 * KEYS[1..r] revocation markers, then the counter hashes.
 * ARGV[1] now (ms), ARGV[2] r, then per counter: limit, window (ms), need (room it must have,
 * 0 = no check), add (what is counted if all have room).
 * Returns {-1} revoked; {0, i, 2k, idx_1, count_1, ..., idx_k, count_k, j, ...} denied, naming
 * every counter i that has no room with its k live buckets; {1, used_1, oldest_1, used_2,
 * oldest_2, ...} admitted (oldest = -1 for an empty counter).
 */
const CONSUME_SCRIPT = `
local now = tonumber(ARGV[1])
local r = tonumber(ARGV[2])
if r > 0 and redis.call('EXISTS', unpack(KEYS, 1, r)) > 0 then return {-1} end
local function buckets(key)
  local flat = redis.call('HGETALL', key)
  local live = {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f ~= 's' and f ~= 'o' then
      live[#live + 1] = tonumber(f)
      live[#live + 1] = tonumber(flat[j + 1])
    end
  end
  return live
end
local n = #KEYS - r
local result = {1}
local denied = nil
local currents, counts = {}, {}
for i = 1, n do
  local key = KEYS[r + i]
  local limit = tonumber(ARGV[4 * i - 1])
  local win = tonumber(ARGV[4 * i])
  local need = tonumber(ARGV[4 * i + 1])
  local size = win / ${BUCKETS_PER_WINDOW}
  local oldest = math.floor((now - win) / size)
  local current = math.floor(now / size)
  local so = redis.call('HMGET', key, 's', 'o', current)
  local used = tonumber(so[1]) or 0
  local minIdx = tonumber(so[2]) or -1
  currents[i], counts[i] = current, tonumber(so[3]) or 0
  if minIdx >= 0 and minIdx < oldest then
    local live, stale = buckets(key), {}
    used, minIdx = 0, -1
    for j = 1, #live, 2 do
      if live[j] < oldest then
        stale[#stale + 1] = live[j]
      else
        used = used + live[j + 1]
        if minIdx < 0 or live[j] < minIdx then minIdx = live[j] end
      end
    end
    if #stale > 0 then redis.call('HDEL', key, unpack(stale)) end
    if minIdx < 0 then
      redis.call('DEL', key)
    else
      redis.call('HSET', key, 's', used, 'o', minIdx)
    end
  end
  if need > 0 and used + need > limit then
    denied = denied or {0}
    local live = buckets(key)
    denied[#denied + 1] = i
    denied[#denied + 1] = #live
    for k = 1, #live do denied[#denied + 1] = live[k] end
  end
  result[#result + 1] = used
  result[#result + 1] = minIdx
end
if denied then return denied end
for i = 1, n do
  local add = tonumber(ARGV[4 * i + 2])
  if add > 0 then
    local key, current = KEYS[r + i], currents[i]
    if result[2 * i + 1] < 0 then
      redis.call('HSET', key, 's', result[2 * i] + add, current, counts[i] + add, 'o', current)
    else
      redis.call('HSET', key, 's', result[2 * i] + add, current, counts[i] + add)
    end
    if counts[i] == 0 then
      local win = tonumber(ARGV[4 * i])
      redis.call('PEXPIRE', key, math.ceil((current + 1) * win / ${BUCKETS_PER_WINDOW} + win - now))
    end
  end
end
return result
`;

/** ioredis adds defined commands as methods at run time; this names the one we define. */
interface WithConsume {
  aisbgwConsume(numKeys: number, ...keysAndArgs: (string | number)[]): Promise<number[]>;
}

/**
 * `promise`, or a rejection once `ms` have passed without it settling. The check comes one event
 * loop turn after the timer (setImmediate), so a reply that has already arrived is read first:
 * when the timer fires late because this process was busy (a CPU-bound burst can stall the loop
 * for longer than the timeout), its own lag is not taken for a Redis outage. That matters: the
 * failover policy would hand the decision to the per-instance fallback, which starts from zero
 * and admits past the shared limit. A Redis that really is hung or gone still fails within about
 * `ms`. (ioredis' own commandTimeout fires in the same timer phase as ours, before pending replies
 * are read, so the connection's is only a longer backstop: see redis-connection.ts.)
 */
export function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    let settled = false;
    const timer = setTimeout(() => {
      setImmediate(() => {
        if (settled) return;
        settled = true;
        reject(new Error(`Redis did not answer within ${ms} ms`));
      });
    }, ms);
    promise.then(
      (value) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(value);
      },
      (err: unknown) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        reject(err instanceof Error ? err : new Error(String(err)));
      },
    );
  });
}

export class RedisQuotaStore implements QuotaStore {
  readonly name = 'redis';
  private readonly redis: RedisClient & WithConsume;

  /** `deadlineMs`: how long a call may take (REDIS_COMMAND_TIMEOUT_MS), see withDeadline; none: the connection's timeout only */
  constructor(
    redis: RedisClient,
    private readonly deadlineMs?: number,
  ) {
    redis.defineCommand('aisbgwConsume', { lua: CONSUME_SCRIPT });
    this.redis = redis as RedisClient & WithConsume;
  }

  consume(plan: QuotaPlan, nowMs: number, mode: ConsumeMode = 'request'): Promise<QuotaDecision> {
    return this.run(plan.revocationKeys, plan.counters, nowMs, (c) => demandOf(c, mode));
  }

  async settle(plan: QuotaPlan, nowMs: number, tokens: number): Promise<void> {
    const counters = tokenCounters(plan);
    if (counters.length > 0) await this.run([], counters, nowMs, () => ({ need: 0, add: tokens }));
  }

  private async run(revocationKeys: string[], counters: CounterSpec[], nowMs: number, demandFor: (c: CounterSpec) => Demand): Promise<QuotaDecision> {
    const keys = [...revocationKeys, ...counters.map((c) => c.key)];
    const args: number[] = [nowMs, revocationKeys.length];
    const demands = counters.map(demandFor);
    counters.forEach((c, i) => args.push(c.limit, c.windowMs, demands[i]?.need ?? 0, demands[i]?.add ?? 0));
    const reply = await this.bounded(this.redis.aisbgwConsume(keys.length, ...keys, ...args));

    if (reply[0] === -1) return { outcome: 'revoked' };
    if (reply[0] === 0) {
      // every counter without room; the one that admits last is reported: Retry-After is when all admit
      let denied: { counter: CounterSpec; retryAfterMs: number } | undefined;
      for (let pos = 1; pos < reply.length; ) {
        const index = (reply[pos] ?? 1) - 1;
        const length = reply[pos + 1] ?? 0;
        const counter = counters[index];
        if (!counter) throw new Error('quota script named an unknown counter');
        const buckets: [number, number][] = [];
        for (let j = pos + 2; j + 1 < pos + 2 + length; j += 2) buckets.push([reply[j] as number, reply[j + 1] as number]);
        const retryAfterMs = msUntilAdmits(buckets, nowMs, counter.windowMs, counter.limit, demands[index]?.need ?? 1);
        if (!denied || retryAfterMs > denied.retryAfterMs) denied = { counter, retryAfterMs };
        pos += 2 + length;
      }
      if (!denied) throw new Error('quota script denied without naming a counter');
      return { outcome: 'denied', ...denied };
    }
    const statuses: CounterStatus[] = counters.map((counter, i) => {
      const used = reply[1 + 2 * i] ?? 0;
      const oldestIndex = reply[2 + 2 * i] ?? -1;
      const oldest = oldestIndex >= 0 ? oldestIndex : Math.floor(nowMs / bucketMs(counter.windowMs));
      return { counter, remaining: counter.limit - used - (demands[i]?.add ?? 0), resetMs: bucketLeavesWindowAt(oldest, counter.windowMs) - nowMs };
    });
    return { outcome: 'admitted', statuses };
  }

  async revoke(revocationKey: string, expiresAtMs: number, nowMs: number): Promise<void> {
    await this.bounded(this.redis.set(revocationKey, '1', 'PX', Math.max(1, Math.ceil(expiresAtMs - nowMs))));
  }

  private bounded<T>(call: Promise<T>): Promise<T> {
    return this.deadlineMs === undefined ? call : withDeadline(call, this.deadlineMs);
  }

  /** The connection belongs to whoever created it (it is shared with other users). */
  async close(): Promise<void> {}
}

/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { ApiFailure, revoke, tokenInfo, type ConsoleConfig, type TokenInfo, type UsageEntry } from './api.js';
import { announce, byId, h, show } from './dom.js';
import { formatDuration, formatTime } from './format.js';
import { currentToken } from './state.js';

/**
 * The inspect tab: the token's tokeninfo (services, expiry with a countdown, a bar per quota
 * window) and its revocation, after a confirmation. tokeninfo never holds a secret.
 */

let countdown: number | undefined;

function quotaItem(entry: UsageEntry): HTMLLIElement {
  const scope = entry.ancestor ? 'Parent token, global' : entry.scope === 'client' ? 'Per client' : 'Global';
  const what = entry.unit === 'tokens' ? 'LLM tokens' : 'requests';
  const title = `${scope}: ${what} per ${entry.window}`;
  const usedShare = entry.limit > 0 ? Math.min(1, entry.used / entry.limit) : 0;
  const bar = h('div', {
    class: `bar${entry.remaining <= 0 ? ' full' : ''}`,
    role: 'meter',
    'aria-label': title,
    'aria-valuemin': '0',
    'aria-valuemax': String(entry.limit),
    'aria-valuenow': String(entry.used),
    'aria-valuetext': `${entry.used} of ${entry.limit} used, ${entry.remaining} left`,
  });
  bar.append(h('span', { 'data-share': usedShare.toFixed(3) }));
  // the width is set through CSSOM: the CSP allows no inline style attribute
  (bar.firstElementChild as HTMLElement).style.width = `${(usedShare * 100).toFixed(1)}%`;
  const reset = entry.used > 0 ? ` · frees up in ${formatDuration(entry.resetSeconds)}` : '';
  return h(
    'li',
    { class: 'quota', 'data-scope': entry.scope, 'data-window': entry.window, 'data-unit': entry.unit },
    h('div', { class: 'quota-head' }, h('span', {}, title), h('span', {}, `${entry.used.toLocaleString()} used · ${entry.remaining.toLocaleString()} of ${entry.limit.toLocaleString()} left${reset}`)),
    bar,
  );
}

/** The server's services that need no secret: a token may use them whatever secrets it carries. */
let openServices: string[] = [];

function render(info: TokenInfo): void {
  byId('info-status').replaceChildren(h('span', { class: 'status-active' }, 'Active'), info.parent ? ` · derived token (depth ${info.depth ?? 1}, parent ${info.parent})` : '');
  // fixed when it was minted; tokeninfo never holds a secret, so both are shown as text
  byId('info-name').textContent = info.name ?? '(unnamed)';
  byId('info-scopes').textContent = info.scopes.join(', ');
  byId('info-jti').textContent = info.jti;
  byId('info-host').textContent = info.host;
  byId('info-issued').textContent = formatTime(info.iat);
  byId('info-expires').textContent = formatTime(info.exp);
  const services = byId('info-services');
  services.replaceChildren(
    ...info.services.map((id) => h('li', {}, id === '' ? '(every service)' : id)),
    ...openServices.map((id) => h('li', {}, `${id} (no secret needed)`)),
  );
  if (services.childElementCount === 0) services.append(h('li', {}, 'none'));
  byId('info-quotas').replaceChildren(...info.usage.map((entry) => quotaItem(entry)));
  show(byId('quota-empty'), info.usage.length === 0);

  const counter = byId('info-countdown');
  const tick = (): void => {
    const left = info.exp - Math.floor(Date.now() / 1000);
    counter.textContent = left > 0 ? `(in ${formatDuration(left, true)})` : '(expired)';
    if (left <= 0) stopCountdown();
  };
  stopCountdown();
  tick();
  countdown = window.setInterval(tick, 1000);
  show(byId('token-info'), true);
}

function stopCountdown(): void {
  if (countdown !== undefined) window.clearInterval(countdown);
  countdown = undefined;
}

function showInspectError(message: string): void {
  const element = byId('inspect-error');
  element.textContent = message;
  element.hidden = false;
}

function explain(failure: ApiFailure): string {
  switch (failure.code) {
    case 'REVOKED_API_KEY':
      return `This token has been revoked (${failure.describe()}).`;
    case 'EXPIRED_API_KEY':
      return `This token has expired (${failure.describe()}).`;
    case 'WRONG_HOST':
      return `This token is bound to another host (${failure.describe()}).`;
    case 'MISSING_API_KEY':
      return 'Paste a token above first.';
    default:
      return failure.describe();
  }
}

export async function inspectCurrent(): Promise<void> {
  const token = currentToken();
  byId('inspect-error').hidden = true;
  byId<HTMLButtonElement>('revoke-button').disabled = token === '';
  if (token === '') {
    show(byId('token-info'), false);
    stopCountdown();
    showInspectError('Paste a token in the Token field above, or mint one.');
    return;
  }
  try {
    render(await tokenInfo(token));
    announce('Token details loaded');
  } catch (err) {
    show(byId('token-info'), false);
    stopCountdown();
    showInspectError(err instanceof ApiFailure ? explain(err) : String(err));
  }
}

export function resetInspect(): void {
  stopCountdown();
  show(byId('token-info'), false);
  byId('inspect-error').hidden = true;
  byId('revoke-result').hidden = true;
  byId<HTMLButtonElement>('revoke-button').disabled = currentToken() === '';
}

export function setUpInspect(config: ConsoleConfig | undefined): void {
  openServices = config?.openServices ?? [];
  const dialog = byId<HTMLDialogElement>('revoke-dialog');
  const revokeButton = byId<HTMLButtonElement>('revoke-button');
  byId('inspect-button').addEventListener('click', () => void inspectCurrent());
  revokeButton.addEventListener('click', () => {
    if (currentToken() === '') return;
    dialog.returnValue = '';
    dialog.showModal();
  });
  dialog.addEventListener('close', () => {
    if (dialog.returnValue !== 'revoke') {
      revokeButton.focus();
      return;
    }
    void (async () => {
      const result = byId('revoke-result');
      try {
        const answer = await revoke(currentToken());
        result.textContent = answer.revoked ? `Revoked: token ${answer.jti ?? ''} is refused from now on.` : `Nothing to revoke: ${answer.reason ?? 'unknown token'}.`;
        result.hidden = false;
        await inspectCurrent();
      } catch (err) {
        showInspectError(err instanceof ApiFailure ? err.describe() : String(err));
      }
      revokeButton.focus();
    })();
  });
}

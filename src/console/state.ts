/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { byId, input } from './dom.js';

/**
 * What the console holds: the token it works with and the admin key. Both live in this page's
 * memory; the token goes to localStorage only while the user has ticked "Remember", and neither
 * ever goes into a URL.
 */

const REMEMBER_KEY = 'aisbreaker-console:token';

let adminKey: string | undefined;
const listeners: ((token: string) => void)[] = [];

export function getAdminKey(): string | undefined {
  return adminKey;
}

export function setAdminKey(key: string | undefined): void {
  adminKey = key === undefined || key.trim() === '' ? undefined : key.trim();
}

export function currentToken(): string {
  return input('current-token').value.trim();
}

/** Sets the token in use (e.g. a freshly minted one) and tells whoever listens. */
export function setCurrentToken(token: string): void {
  input('current-token').value = token;
  persist();
  for (const listener of listeners) listener(token);
}

export function onTokenChange(listener: (token: string) => void): void {
  listeners.push(listener);
}

function storage(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

function persist(): void {
  const remember = input('remember-token').checked;
  const token = currentToken();
  if (remember && token) storage()?.setItem(REMEMBER_KEY, token);
  else storage()?.removeItem(REMEMBER_KEY);
}

export function setUpTokenBar(): void {
  const field = input('current-token');
  const remember = input('remember-token');
  const showButton = byId<HTMLButtonElement>('current-token-show');

  const saved = storage()?.getItem(REMEMBER_KEY);
  if (saved) {
    field.value = saved;
    remember.checked = true;
  }
  field.addEventListener('input', () => {
    persist();
    for (const listener of listeners) listener(currentToken());
  });
  remember.addEventListener('change', persist);
  showButton.addEventListener('click', () => {
    const visible = field.type === 'password';
    field.type = visible ? 'text' : 'password';
    showButton.textContent = visible ? 'Hide' : 'Show';
    showButton.setAttribute('aria-pressed', String(visible));
  });
  byId('current-token-forget').addEventListener('click', () => {
    remember.checked = false;
    setCurrentToken('');
    field.focus();
  });
}

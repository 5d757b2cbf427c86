/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { ApiFailure, mint, type ConsoleConfig, type MintResponse } from './api.js';
import { announce, byId, copyText, h, input, show } from './dom.js';
import { formatDuration, parseTimeSpan } from './format.js';
import { getAdminKey, setAdminKey, setCurrentToken } from './state.js';

/**
 * The mint tab: a form for the AIsBreaker mint body. Local checks are only those the gateway
 * makes too (a number that is no number, an expiry that is no time span or too long); every
 * refusal of the gateway is shown next to the field its `details.field` names.
 */

let rowCounter = 0;

function secretRows(): HTMLLIElement[] {
  return [...byId('secret-rows').querySelectorAll<HTMLLIElement>('li.secret-row')];
}

/** Field paths follow the rows' order, as the API names them (`serviceSecrets.0.authSecret`). */
function renumberRows(): void {
  secretRows().forEach((row, index) => {
    row.querySelector('[data-role=serviceId]')?.setAttribute('data-field', `requestAuthAndQuotas.serviceSecrets.${index}.serviceId`);
    row.querySelector('[data-role=authSecret]')?.setAttribute('data-field', `requestAuthAndQuotas.serviceSecrets.${index}.authSecret`);
    const number = String(index + 1);
    for (const label of row.querySelectorAll('[data-role=row-number]')) label.textContent = number;
    row.querySelector('button')?.setAttribute('aria-label', `Remove service secret ${number}`);
  });
}

function addSecretRow(serviceId = ''): HTMLLIElement {
  const n = ++rowCounter;
  const idInput = `secret-${n}-service`;
  const secretInput = `secret-${n}-secret`;
  const serviceField = h(
    'div',
    { class: 'field' },
    h('label', { for: idInput }, 'Service id ', h('span', { class: 'sr-only', 'data-role': 'row-number' })),
    h('input', { id: idInput, type: 'text', list: 'service-ids', autocomplete: 'off', spellcheck: 'false', placeholder: 'chat:openai.com', 'data-role': 'serviceId', 'aria-describedby': `${idInput}-error` }),
    h('p', { class: 'field-error', id: `${idInput}-error`, hidden: '' }),
  );
  const secretField = h(
    'div',
    { class: 'field' },
    h('label', { for: secretInput }, 'Secret ', h('span', { class: 'sr-only', 'data-role': 'row-number' })),
    h('input', { id: secretInput, type: 'password', autocomplete: 'off', spellcheck: 'false', placeholder: 'sk-…', 'data-role': 'authSecret', 'aria-describedby': `${secretInput}-error` }),
    h('p', { class: 'field-error', id: `${secretInput}-error`, hidden: '' }),
  );
  const remove = h('button', { type: 'button' }, 'Remove');
  const row = h('li', { class: 'secret-row' }, serviceField, secretField, remove);
  (serviceField.querySelector('input') as HTMLInputElement).value = serviceId;
  remove.addEventListener('click', () => {
    const rows = secretRows();
    const index = rows.indexOf(row);
    row.remove();
    renumberRows();
    const next = secretRows()[index] ?? secretRows()[index - 1];
    (next?.querySelector('input') ?? byId('add-secret')).focus();
    announce('Service secret removed');
  });
  byId('secret-rows').append(row);
  renumberRows();
  return row;
}

// --- errors next to their fields ---

function errorElementFor(control: HTMLElement): HTMLElement | undefined {
  const ids = (control.getAttribute('aria-describedby') ?? '').split(/\s+/);
  const id = ids.find((candidate) => candidate.endsWith('-error'));
  return id ? (document.getElementById(id) ?? undefined) : undefined;
}

/** A field's error goes as soon as the field is edited: it spoke of the value that was there. */
function clearErrorOf(control: EventTarget | null): void {
  if (!(control instanceof HTMLElement) || control.getAttribute('aria-invalid') !== 'true') return;
  control.removeAttribute('aria-invalid');
  const target = errorElementFor(control);
  if (target) {
    target.textContent = '';
    target.hidden = true;
  }
}

function clearErrors(): void {
  const form = byId('mint-form');
  for (const element of form.querySelectorAll<HTMLElement>('.field-error')) {
    element.textContent = '';
    element.hidden = true;
  }
  for (const element of form.querySelectorAll('[aria-invalid]')) element.removeAttribute('aria-invalid');
  byId('mint-error').hidden = true;
}

/** The control (or group) an API field path names: exact, else its nearest named ancestor. */
function controlFor(field: string): HTMLElement | undefined {
  const named = [...byId('mint-form').querySelectorAll<HTMLElement>('[data-field]')];
  let path = field;
  for (;;) {
    const exact = named.find((element) => element.dataset['field'] === path);
    if (exact) return exact;
    // a group named by the API (e.g. a limits object): its first control
    const child = named.find((element) => element.dataset['field']?.startsWith(path + '.') && !(element instanceof HTMLFieldSetElement));
    if (child && path === field) return child;
    const dot = path.lastIndexOf('.');
    if (dot < 0) return undefined;
    path = path.slice(0, dot);
  }
}

/** Shows a message next to the control the field names (or as the form's error); true if next to a field. */
function showError(field: string | undefined, message: string): boolean {
  const control = field === undefined ? undefined : controlFor(field);
  const target = control ? errorElementFor(control) : undefined;
  if (!control || !target) {
    const formError = byId('mint-error');
    formError.textContent = message;
    formError.hidden = false;
    return false;
  }
  target.textContent = message;
  target.hidden = false;
  if (!(control instanceof HTMLFieldSetElement)) control.setAttribute('aria-invalid', 'true');
  return true;
}

function focusFirstError(): void {
  const form = byId('mint-form');
  const invalid = form.querySelector<HTMLElement>('[aria-invalid=true]');
  if (invalid) {
    invalid.focus();
    return;
  }
  const group = [...form.querySelectorAll<HTMLElement>('.field-error')].find((e) => !e.hidden);
  const fieldset = group?.closest('fieldset');
  const first = fieldset?.querySelector<HTMLElement>('input, button');
  (first ?? byId('mint-error')).focus();
}

/** The message of an API error without the field name it starts with (the field is where it is shown). */
function messageWithoutField(failure: ApiFailure): string {
  const field = failure.field;
  return field !== undefined && failure.message.startsWith(field + ': ') ? failure.message.slice(field.length + 2) : failure.message;
}

// --- the body ---

interface Built {
  body: Record<string, unknown>;
  problems: [string, string][];
}

function buildBody(config: ConsoleConfig | undefined): Built {
  const problems: [string, string][] = [];
  const quotas: Record<string, Record<string, number>> = {};
  for (const element of byId('mint-form').querySelectorAll<HTMLInputElement>('input[type=number][data-field]')) {
    const field = element.dataset['field'] ?? '';
    const [, , scope, name] = field.split('.');
    if (!scope || !name) continue;
    if (element.validity.badInput) {
      problems.push([field, 'must be a positive integer']);
      continue;
    }
    if (element.value.trim() === '') continue;
    (quotas[scope] ??= {})[name] = Number(element.value);
  }
  const serviceSecrets = secretRows()
    .map((row) => ({
      serviceId: (row.querySelector<HTMLInputElement>('[data-role=serviceId]')?.value ?? '').trim(),
      authSecret: row.querySelector<HTMLInputElement>('[data-role=authSecret]')?.value ?? '',
    }))
    // a row left entirely empty is no entry
    .filter((entry) => entry.serviceId !== '' || entry.authSecret !== '');

  const expiry = input('expiry').value.trim();
  const lifetimeMs = parseTimeSpan(expiry);
  if (expiry !== '' && lifetimeMs === undefined) {
    problems.push(['expirationTimeSpan', 'not a time span; use e.g. "2h", "365d" or "90 days"']);
  } else if (lifetimeMs !== undefined && config && lifetimeMs > config.maxTokenLifetimeSeconds * 1000) {
    problems.push(['expirationTimeSpan', `longer than this server allows (max ${formatDuration(config.maxTokenLifetimeSeconds)})`]);
  }
  const body: Record<string, unknown> = {
    requestAuthAndQuotas: {
      ...(Object.keys(quotas).length > 0 ? { requestQuotas: quotas } : {}),
      ...(serviceSecrets.length > 0 ? { serviceSecrets } : {}),
    },
    ...(expiry !== '' ? { expirationTimeSpan: expiry } : {}),
  };
  return { body, problems };
}

function updateExpiryHint(config: ConsoleConfig | undefined): void {
  const text = input('expiry').value.trim();
  const hint = byId('expiry-hint');
  for (const preset of document.querySelectorAll<HTMLButtonElement>('[data-expiry]')) {
    preset.setAttribute('aria-pressed', String(preset.dataset['expiry'] === text));
  }
  const ms = parseTimeSpan(text === '' ? (config?.defaultExpirationTimeSpan ?? '2h') : text);
  if (ms === undefined) {
    hint.textContent = 'e.g. 2h, 30d or 90 days';
    return;
  }
  const until = new Date(Date.now() + ms).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
  hint.textContent = `${text === '' ? 'Default: ' : ''}${formatDuration(ms / 1000)}, until ${until}`;
}

// --- the result, shown once ---

function snippets(token: string, services: string[]): { curl: string; sdk: string } {
  const origin = window.location.origin;
  const service = services.find((s) => s.startsWith('chat:') && s !== 'chat:dummy' && s !== 'chat:echo');
  const model = service ? `${service}/${service === 'chat:openai.com' ? 'gpt-4o-mini' : 'default'}` : 'chat:dummy/any';
  const curl = `curl -sN ${origin}/v1/chat/completions \\
  -H "Authorization: Bearer ${token}" \\
  -H 'Content-Type: application/json' \\
  -d '{"model":"${model}","stream":true,"messages":[{"role":"user","content":"Hello"}]}'`;
  const sdk = `import OpenAI from 'openai';

const client = new OpenAI({
  baseURL: '${origin}/v1',
  apiKey: '${token}',
});
const stream = await client.chat.completions.create({
  model: '${model}',
  messages: [{ role: 'user', content: 'Hello' }],
  stream: true,
});
for await (const chunk of stream) process.stdout.write(chunk.choices[0]?.delta?.content ?? '');`;
  return { curl, sdk };
}

function showMinted(result: MintResponse, services: string[]): void {
  const token = result.access_token;
  input('minted-token').value = token;
  // the textarea is the one shown; the form keeps no trace of it
  const { curl, sdk } = snippets(token, services);
  byId('snippet-curl').textContent = curl;
  byId('snippet-sdk').textContent = sdk;
  byId('minted-expiry').textContent = `It expires in ${formatDuration(result.expires_in)}.`;
  show(byId('minted'), true);
  setCurrentToken(token);
  byId('minted').scrollIntoView({ block: 'start' });
  byId('minted-title').focus({ preventScroll: true });
  announce('Token minted. It is shown once: copy it now.');
}

export function setUpMint(config: ConsoleConfig | undefined, goTo: (tab: 'inspect' | 'try') => void): void {
  const form = byId<HTMLFormElement>('mint-form');
  const submit = byId<HTMLButtonElement>('mint-submit');
  const adminBox = byId('admin-key-box');
  const adminInput = input('admin-key');
  if (config?.adminKeyRequired) show(adminBox, true);
  adminInput.addEventListener('input', () => setAdminKey(adminInput.value));

  const datalist = byId('service-ids');
  for (const id of config?.services ?? []) datalist.append(h('option', { value: id }));
  byId('add-secret').addEventListener('click', () => {
    const row = addSecretRow();
    row.querySelector('input')?.focus();
  });

  const expiry = input('expiry');
  expiry.addEventListener('input', () => updateExpiryHint(config));
  for (const preset of document.querySelectorAll<HTMLButtonElement>('[data-expiry]')) {
    preset.addEventListener('click', () => {
      expiry.value = preset.dataset['expiry'] ?? '';
      updateExpiryHint(config);
    });
  }
  updateExpiryHint(config);

  form.addEventListener('input', (event) => clearErrorOf(event.target));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void (async () => {
      clearErrors();
      const { body, problems } = buildBody(config);
      if (problems.length > 0) {
        for (const [field, message] of problems) showError(field, message);
        focusFirstError();
        return;
      }
      submit.disabled = true;
      submit.textContent = 'Minting…';
      try {
        const services = ((body['requestAuthAndQuotas'] as { serviceSecrets?: { serviceId: string }[] }).serviceSecrets ?? []).map((s) => s.serviceId);
        showMinted(await mint(body, getAdminKey()), services);
      } catch (err) {
        const failure = err instanceof ApiFailure ? err : new ApiFailure(0, 'ERROR', String(err));
        if (failure.status === 401 || (failure.status === 403 && /admin key/i.test(failure.message))) {
          show(adminBox, true);
          showError('adminKey', getAdminKey() ? 'This admin key was refused.' : 'This server needs its admin key to mint: enter it here.');
        } else if (failure.status === 429) {
          showError(undefined, `Too many mints from this address: try again in ${failure.retryAfter ?? 'a while'} s.`);
        } else if (!showError(failure.field, messageWithoutField(failure))) {
          byId('mint-error').textContent = failure.describe();
        }
        focusFirstError();
      } finally {
        submit.disabled = false;
        submit.textContent = 'Mint token';
      }
    })();
  });

  for (const button of document.querySelectorAll<HTMLButtonElement>('[data-copy]')) {
    const label = button.textContent ?? 'Copy';
    button.addEventListener('click', () => {
      const source = byId(button.dataset['copy'] ?? '');
      const text = source instanceof HTMLTextAreaElement ? source.value : (source.textContent ?? '');
      void copyText(text, source).then((ok) => {
        button.textContent = ok ? 'Copied ✓' : 'Copy failed: select and copy by hand';
        announce(ok ? 'Copied to the clipboard' : 'Copying failed');
        window.setTimeout(() => (button.textContent = label), 2000);
      });
    });
  }
  byId('minted-inspect').addEventListener('click', () => goTo('inspect'));
  byId('minted-try').addEventListener('click', () => goTo('try'));
  byId('minted-dismiss').addEventListener('click', () => {
    input('minted-token').value = '';
    byId('snippet-curl').textContent = '';
    byId('snippet-sdk').textContent = '';
    show(byId('minted'), false);
    submit.focus();
  });
}

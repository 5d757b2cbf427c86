/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { ApiFailure, models, streamChat, type ChatMessage } from './api.js';
import { announce, byId, h, input } from './dom.js';
import { currentToken } from './state.js';

/**
 * The try tab: a chat through `POST /v1/chat/completions` with the token in use, the answer
 * streamed into the transcript as it arrives.
 */

const history: ChatMessage[] = [];
let running: AbortController | undefined;
let modelsFor: string | undefined;

function explain(failure: ApiFailure): string {
  switch (failure.code) {
    case 'REVOKED_API_KEY':
      return `Refused: this token has been revoked (${failure.describe()})`;
    case 'EXPIRED_API_KEY':
      return `Refused: this token has expired (${failure.describe()})`;
    case 'RATE_LIMITED':
      return `Refused: a quota of this token is used up${failure.retryAfter ? `, retry in ${failure.retryAfter} s` : ''} (${failure.describe()})`;
    case 'MISSING_API_KEY':
      return 'Paste a token in the Token field above, or mint one.';
    default:
      return `Refused: ${failure.describe()}`;
  }
}

function bubble(role: 'user' | 'assistant' | 'error', text: string): { item: HTMLLIElement; body: HTMLSpanElement } {
  const who = role === 'user' ? 'You' : role === 'assistant' ? 'Assistant' : 'Error';
  const body = h('span', { class: 'text' }, text);
  const item = h('li', { class: role }, h('span', { class: 'who' }, who), body);
  byId('transcript').append(item);
  item.scrollIntoView({ block: 'nearest' });
  return { item, body };
}

/**
 * Suggests the token's own models (GET /v1/models) next to the built-in test services: asked once
 * per token, when the model field is first used, as the call counts against the token's quotas.
 */
async function refreshModels(): Promise<void> {
  const token = currentToken();
  if (token === '' || token === modelsFor) return;
  modelsFor = token;
  const ids = new Set(['chat:dummy/any', 'chat:echo/any', ...(await models(token))]);
  byId('model-ids').replaceChildren(...[...ids].map((id) => h('option', { value: id })));
}

async function send(): Promise<void> {
  const prompt = byId<HTMLTextAreaElement>('chat-input');
  const text = prompt.value.trim();
  if (text === '' || running) return;
  const token = currentToken();
  if (token === '') {
    bubble('error', 'Paste a token in the Token field above, or mint one.');
    input('current-token').focus();
    return;
  }
  const model = input('chat-model').value.trim() || 'chat:dummy/any';
  prompt.value = '';
  bubble('user', text);
  history.push({ role: 'user', content: text });

  const controller = new AbortController();
  running = controller;
  const send = byId<HTMLButtonElement>('chat-send');
  const stop = byId<HTMLButtonElement>('chat-stop');
  send.disabled = true;
  stop.disabled = false;
  const { item, body } = bubble('assistant', '');
  item.classList.add('streaming');
  item.setAttribute('aria-busy', 'true');
  let chunks = 0;
  try {
    const answer = await streamChat(
      token,
      model,
      history,
      (delta) => {
        chunks += 1;
        body.textContent += delta;
        item.dataset['chunks'] = String(chunks);
      },
      controller.signal,
    );
    history.push({ role: 'assistant', content: answer });
    announce('Answer complete');
  } catch (err) {
    history.pop();
    if (controller.signal.aborted) {
      body.textContent += ' [stopped]';
    } else {
      item.remove();
      const message = err instanceof ApiFailure ? explain(err) : `Failed: ${String(err)}`;
      const { item: errorItem } = bubble('error', message);
      if (err instanceof ApiFailure) errorItem.dataset['code'] = err.code;
      announce(message);
    }
  } finally {
    item.classList.remove('streaming');
    item.removeAttribute('aria-busy');
    running = undefined;
    send.disabled = false;
    stop.disabled = true;
    prompt.focus();
  }
}

export function setUpChat(): void {
  const form = byId<HTMLFormElement>('chat-form');
  const prompt = byId<HTMLTextAreaElement>('chat-input');
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    void send();
  });
  prompt.addEventListener('keydown', (event) => {
    if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  input('chat-model').addEventListener('focus', () => void refreshModels());
  byId('chat-stop').addEventListener('click', () => running?.abort());
  byId('chat-reset').addEventListener('click', () => {
    running?.abort();
    history.length = 0;
    byId('transcript').replaceChildren();
    prompt.focus();
    announce('New chat');
  });
}

/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
/** Small DOM helpers for the console. Text goes in as text only, never as HTML. */

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`console: #${id} is missing from the page`);
  return element as T;
}

export function input(id: string): HTMLInputElement {
  return byId<HTMLInputElement>(id);
}

type Child = Node | string | undefined | false;

/** `h('li', {class: 'x'}, 'text', child)`: an element with attributes and text or element children. */
export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attributes: Record<string, string> = {}, ...children: Child[]): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  for (const child of children) {
    if (child === undefined || child === false) continue;
    element.append(child);
  }
  return element;
}

export function show(element: HTMLElement, visible: boolean): void {
  element.hidden = !visible;
}

/** Says something to screen readers through the page's polite status region. */
export function announce(text: string): void {
  const region = byId('announce');
  region.textContent = '';
  // a new text node after a tick, so that repeating the same words is announced again
  window.setTimeout(() => (region.textContent = text), 50);
}

/** Copies text, with the async clipboard API where the page may use it, else the selection. */
export async function copyText(text: string, source?: HTMLElement): Promise<boolean> {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    if (source instanceof HTMLTextAreaElement || source instanceof HTMLInputElement) {
      source.select();
      return document.execCommand('copy');
    }
    return false;
  }
}

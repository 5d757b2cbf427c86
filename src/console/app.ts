/// <reference lib="dom" />
/// <reference lib="dom.iterable" />
import { loadConfig, type ConsoleConfig } from './api.js';
import { setUpChat } from './chat.js';
import { byId } from './dom.js';
import { inspectCurrent, resetInspect, setUpInspect } from './inspect.js';
import { setUpMint } from './mint.js';
import { currentToken, onTokenChange, setUpTokenBar } from './state.js';

/** The console's entry: tabs, the token bar, and the three panels. */

const TABS = ['mint', 'inspect', 'try'] as const;
type Tab = (typeof TABS)[number];

function isTab(name: string): name is Tab {
  return (TABS as readonly string[]).includes(name);
}

function selectTab(tab: Tab, focus: boolean): void {
  for (const name of TABS) {
    const button = byId(`tab-${name}`);
    const selected = name === tab;
    button.setAttribute('aria-selected', String(selected));
    button.tabIndex = selected ? 0 : -1;
    byId(`panel-${name}`).hidden = !selected;
  }
  if (focus) byId(`tab-${tab}`).focus();
  // the tab's name only (never a token) goes into the address
  history.replaceState(null, '', `#${tab}`);
  if (tab === 'inspect' && currentToken() !== '') void inspectCurrent();
}

function setUpTabs(): (tab: Tab) => void {
  const list = document.querySelector<HTMLElement>('[role=tablist]');
  for (const name of TABS) byId(`tab-${name}`).addEventListener('click', () => selectTab(name, false));
  // WAI-ARIA tabs: arrows, Home and End move between tabs, Tab moves into the panel
  list?.addEventListener('keydown', (event) => {
    const current = TABS.findIndex((name) => byId(`tab-${name}`).getAttribute('aria-selected') === 'true');
    const moves: Record<string, number> = { ArrowRight: current + 1, ArrowLeft: current - 1, Home: 0, End: TABS.length - 1 };
    const target = moves[event.key];
    if (target === undefined) return;
    event.preventDefault();
    const next = TABS[(target + TABS.length) % TABS.length];
    if (next) selectTab(next, true);
  });
  const fromHash = window.location.hash.slice(1);
  if (isTab(fromHash)) selectTab(fromHash, false);
  return (tab) => selectTab(tab, true);
}

async function start(): Promise<void> {
  let config: ConsoleConfig | undefined;
  try {
    config = await loadConfig();
  } catch {
    // the console still works; it just cannot suggest service ids or know of the admin key
  }
  setUpTokenBar();
  const goTo = setUpTabs();
  setUpMint(config, goTo);
  setUpInspect(config);
  setUpChat();
  onTokenChange(() => resetInspect());
  resetInspect();
  document.body.dataset['ready'] = 'true';
}

void start();

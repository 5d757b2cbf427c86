import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { launchChromium, newPage, Screenshots, type TestBrowser } from '../helpers/browser.js';
import { mint, type MintBody } from '../helpers/gateway.js';
import { GatewayProcess } from '../helpers/gateway-process.js';

/**
 * The web console in a real headless Chromium, against the built gateway (dist/, as `npm start`
 * runs it). Screenshots of every step go to test-artifacts/console/.
 */

const BUILT_CONSOLE = fileURLToPath(new URL('../../dist/console/app.js', import.meta.url));
const ADMIN_KEY = 'console-admin-key-0123456789abcdef';
const NOT_A_REAL_SECRET = 'sk-console-test-not-a-real-key';
/** one numbered sequence for the whole file, in the order the steps run */
const shots = new Screenshots('console');

/** Chromium logs every 4xx/5xx fetch as a console error; those are expected here, anything else is not. */
function unexpected(errors: string[]): string[] {
  return errors.filter((e) => !/Failed to load resource: the server responded with a status of (4|5)\d\d/.test(e));
}

async function openConsole(page: Page, url: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.waitForSelector('body[data-ready=true]');
}

/** Opens the console, pastes `token` into its Token field and shows it on the Inspect tab. */
async function inspectPasted(page: Page, url: string, token: string): Promise<void> {
  await openConsole(page, url);
  await page.getByLabel('Token', { exact: true }).fill(token);
  await page.getByRole('tab', { name: 'Inspect' }).click();
  await page.locator('#token-info').waitFor({ state: 'visible' });
}

async function clipboard(page: Page): Promise<string> {
  return page.evaluate(() => navigator.clipboard.readText());
}

async function storedAnywhere(page: Page): Promise<string> {
  return page.evaluate(() => JSON.stringify({ local: { ...localStorage }, session: { ...sessionStorage }, cookie: document.cookie, url: location.href }));
}

describe('web console', () => {
  let gw: GatewayProcess;
  let chromium: TestBrowser;

  beforeAll(async () => {
    if (!existsSync(BUILT_CONSOLE)) throw new Error('dist/console is missing: run `npm run build` first (npm test does)');
    [gw, chromium] = await Promise.all([GatewayProcess.start({}), launchChromium()]);
  });
  afterAll(async () => {
    await chromium?.close();
    await gw?.stop();
  });

  it('is served at /console with a strict CSP, nothing inline and nothing from elsewhere; / leads to it', async () => {
    const root = await fetch(`${gw.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/console/');

    const res = await fetch(`${gw.url}/console/`);
    expect(res.status).toBe(200);
    const csp = res.headers.get('content-security-policy') ?? '';
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    // helmet's other protections, on the page and on each of its files; no HSTS (TLS is the proxy's business)
    for (const path of ['/console/', '/console/console.css', '/console/app.js', '/console/config.json']) {
      const headers = (await fetch(`${gw.url}${path}`)).headers;
      expect(headers.get('content-security-policy'), path).toBe(csp);
      expect(headers.get('x-content-type-options'), path).toBe('nosniff');
      expect(headers.get('x-frame-options'), path).toBe('DENY');
      expect(headers.get('referrer-policy'), path).toBe('no-referrer');
      expect(headers.get('cross-origin-opener-policy'), path).toBe('same-origin');
      expect(headers.get('cross-origin-resource-policy'), path).toBe('same-origin');
      expect(headers.get('permissions-policy'), path).toContain('camera=()');
      expect(headers.get('strict-transport-security'), path).toBeNull();
    }
    const html = await res.text();
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)/); // every script is a file of this origin
    expect(html).not.toMatch(/\sstyle=|<style/);
    expect(html).not.toMatch(/https?:\/\//);

    const script = await fetch(`${gw.url}/console/app.js`);
    expect(script.status).toBe(200);
    expect(script.headers.get('content-type')).toContain('javascript');
    // only the browser modules are served, not the server's own files
    expect((await fetch(`${gw.url}/console/assets.js`)).status).toBe(404);
    const config = (await (await fetch(`${gw.url}/console/config.json`)).json()) as { adminKeyRequired: boolean; services: string[] };
    expect(config.adminKeyRequired).toBe(false);
    expect(config.services).toContain('chat:dummy');
  });

  describe('mint, copy, inspect, chat, revoke', () => {
    let context: BrowserContext;
    let page: Page;
    let errors: string[];
    let requests: string[];
    let token = '';

    beforeAll(async () => {
      ({ context, page, errors, requests } = await newPage(chromium.browser, gw.url));
      await openConsole(page, gw.url);
    });
    afterAll(async () => {
      await context?.close();
    });

    it('mints a token through the form and shows it once, with a copy button and snippets', async () => {
      await shots.take(page, 'mint-form');
      await page.getByLabel('Per client requests per minute').fill('5');
      await page.getByLabel('Global requests per day').fill('100');
      await page.getByLabel('Global LLM tokens per day').fill('10000');
      await page.getByRole('button', { name: 'Add service secret' }).click();
      await page.getByLabel('Service id 1', { exact: true }).fill('chat:openai.com');
      await page.getByLabel('Secret 1', { exact: true }).fill(NOT_A_REAL_SECRET);
      // service ids are suggested from the server's registry
      const suggestions = await page.locator('#service-ids option').evaluateAll((options) => options.map((o) => (o as HTMLOptionElement).value));
      expect(suggestions).toEqual(expect.arrayContaining(['chat:dummy', 'chat:echo']));
      await page.getByRole('button', { name: '1 day' }).click();
      await expect.poll(() => page.getByLabel('Expires after').inputValue()).toBe('1d');
      await expect.poll(() => page.locator('#expiry-hint').textContent()).toMatch(/^1d, until /);
      await shots.take(page, 'mint-form-filled');

      await page.getByRole('button', { name: 'Mint token' }).click();
      await page.locator('#minted').waitFor({ state: 'visible' });
      // in sight at once, above the long form (not below it)
      const title = await page.locator('#minted-title').boundingBox();
      expect(title?.y).toBeGreaterThanOrEqual(0);
      expect((title?.y ?? 0) + (title?.height ?? 0)).toBeLessThanOrEqual(page.viewportSize()?.height ?? 0);
      expect(await page.locator('#minted').evaluate((minted) => Boolean(minted.compareDocumentPosition(document.getElementById('mint-form') as Node) & Node.DOCUMENT_POSITION_FOLLOWING))).toBe(true);
      token = await page.getByRole('textbox', { name: 'New token' }).inputValue();
      expect(token).toMatch(/^aisbreaker_/);
      expect(await page.locator('#minted').textContent()).toContain('Shown once');
      await shots.take(page, 'minted');

      await page.getByRole('button', { name: 'Copy token' }).click();
      await expect.poll(() => clipboard(page)).toBe(token);
      await expect.poll(() => page.locator('#copy-token').textContent()).toBe('Copied ✓');

      const curl = (await page.locator('#snippet-curl').textContent()) ?? '';
      expect(curl).toContain(`Authorization: Bearer ${token}`);
      expect(curl).toContain(`${gw.url}/v1/chat/completions`);
      const sdk = (await page.locator('#snippet-sdk').textContent()) ?? '';
      expect(sdk).toContain(`baseURL: '${gw.url}/v1'`);
      expect(sdk).toContain(`apiKey: '${token}'`);
      await page.getByRole('button', { name: 'Copy curl command' }).click();
      await expect.poll(() => clipboard(page)).toBe(curl);

      // the new token is the one in use, in page memory only
      expect(await page.locator('#current-token').inputValue()).toBe(token);
      const stored = await storedAnywhere(page);
      expect(stored).not.toContain('aisbreaker_');
      expect(stored).not.toContain(NOT_A_REAL_SECRET);
    });

    it('inspects it: services, expiry countdown, a bar per quota window, never the secret', async () => {
      await page.getByRole('button', { name: 'Inspect it' }).click();
      expect(await page.getByRole('tab', { name: 'Inspect' }).getAttribute('aria-selected')).toBe('true');
      await page.locator('#token-info').waitFor({ state: 'visible' });
      expect(await page.locator('#info-status').textContent()).toContain('Active');
      // its secret's service, and the ones any token may use
      expect(await page.locator('#info-services li').allTextContents()).toEqual(['chat:openai.com', 'chat:dummy (no secret needed)', 'chat:echo (no secret needed)']);
      expect(await page.locator('#info-host').textContent()).toBe('127.0.0.1');
      expect(await page.locator('#info-name').textContent()).toBe('(unnamed)');
      expect(await page.locator('#info-scopes').textContent()).toBe('inference, analytics:read');
      const first = await page.locator('#info-countdown').textContent();
      expect(first).toMatch(/^\(in (1d 0h 0m 0s|23h 59m \d+s)\)$/);
      await expect.poll(() => page.locator('#info-countdown').textContent(), { timeout: 3000 }).not.toBe(first);

      const quotas = page.locator('#info-quotas li');
      expect(await quotas.count()).toBe(3);
      const meters = page.getByRole('meter');
      expect(await meters.count()).toBe(3);
      const perMinute = page.getByRole('meter', { name: 'Per client: requests per minute' });
      expect(await perMinute.getAttribute('aria-valuemax')).toBe('5');
      expect(await perMinute.getAttribute('aria-valuenow')).toBe('0');
      expect(await page.getByRole('meter', { name: 'Global: LLM tokens per day' }).getAttribute('aria-valuemax')).toBe('10000');
      expect(await page.locator('body').textContent()).not.toContain(NOT_A_REAL_SECRET);
      await shots.take(page, 'inspected');
    });

    it('chats with chat:dummy through /v1/chat/completions, the answer streamed as it arrives', async () => {
      await page.getByRole('tab', { name: 'Try' }).click();
      expect(await page.getByLabel('Model').inputValue()).toBe('chat:dummy/any');
      await page.getByLabel('Message').fill('Hello console');
      await page.getByLabel('Message').press('Enter');
      const answer = page.locator('#transcript li.assistant').last();
      await expect
        .poll(() => answer.locator('.text').textContent())
        .toBe("Hello, the answer to 'Hello console' from DummyAssistantService is unknown ...");
      // many deltas of one event stream, each appended as it came
      expect(Number(await answer.getAttribute('data-chunks'))).toBeGreaterThan(3);
      await expect.poll(() => answer.getAttribute('class')).toBe('assistant');
      expect(requests.some((url) => url === `${gw.url}/v1/chat/completions`)).toBe(true);
      await shots.take(page, 'chat-answered');

      // the conversation goes on: the history is sent along
      await page.getByLabel('Message').fill('And again');
      await page.getByRole('button', { name: 'Send' }).click();
      await expect.poll(() => page.locator('#transcript li.assistant').count()).toBe(2);
      await expect.poll(() => page.locator('#transcript li.assistant').last().textContent()).toContain("'And again'");

      // the requests counted: tokeninfo shows them used
      await page.getByRole('tab', { name: 'Inspect' }).click();
      await expect.poll(() => page.getByRole('meter', { name: 'Per client: requests per minute' }).getAttribute('aria-valuenow')).toBe('2');
      await shots.take(page, 'inspected-after-chat');
    });

    it('revokes after a confirmation, and the next chat fails with REVOKED_API_KEY', async () => {
      await page.getByRole('button', { name: 'Revoke token…' }).click();
      const dialog = page.getByRole('dialog', { name: 'Revoke this token?' });
      await dialog.waitFor({ state: 'visible' });
      await shots.take(page, 'revoke-confirmation');
      await dialog.getByRole('button', { name: 'Cancel' }).click();
      await dialog.waitFor({ state: 'hidden' });
      expect(await page.locator('#info-status').textContent()).toContain('Active');
      const stillWorks = await fetch(`${gw.url}/api/v1/oauth/tokeninfo`, { headers: { Authorization: `Bearer ${token}` } });
      expect(stillWorks.status).toBe(200);

      await page.getByRole('button', { name: 'Revoke token…' }).click();
      await dialog.getByRole('button', { name: 'Revoke' }).click();
      await expect.poll(() => page.locator('#revoke-result').textContent()).toMatch(/^Revoked: token \S+ is refused from now on\.$/);
      await expect.poll(() => page.locator('#inspect-error').textContent()).toContain('REVOKED_API_KEY');
      expect(await page.locator('#token-info').isHidden()).toBe(true);
      await shots.take(page, 'revoked');

      await page.getByRole('tab', { name: 'Try' }).click();
      await page.getByLabel('Message').fill('Are you still there?');
      await page.getByLabel('Message').press('Enter');
      const refusal = page.locator('#transcript li.error').last();
      await refusal.waitFor({ state: 'visible' });
      expect(await refusal.getAttribute('data-code')).toBe('REVOKED_API_KEY');
      expect(await refusal.textContent()).toContain('Refused: this token has been revoked (401 REVOKED_API_KEY: token has been revoked)');
      await shots.take(page, 'chat-refused');

      expect(unexpected(errors)).toEqual([]);
      // nothing was fetched from anywhere but the gateway
      expect(requests.filter((url) => !url.startsWith(gw.url) && !url.startsWith('data:'))).toEqual([]);
    });
  });

  it("shows the API's validation error next to the field it names", async () => {
    const { context, page } = await newPage(chromium.browser, gw.url);
    try {
      await openConsole(page, gw.url);
      const perMinute = page.getByLabel('Per client requests per minute');
      await perMinute.fill('-1');
      const refused = page.waitForResponse((r) => r.url().endsWith('/api/v1/oauth/token'));
      await page.getByRole('button', { name: 'Mint token' }).click();
      expect((await refused).status()).toBe(400);
      const error = page.locator('#limit-client-requests-minute-error');
      await error.waitFor({ state: 'visible' });
      expect(await error.textContent()).toBe('must be a positive integer');
      expect(await perMinute.getAttribute('aria-invalid')).toBe('true');
      expect(await perMinute.evaluate((e) => e === document.activeElement)).toBe(true);
      // the error is the field's description: screen readers read it with the field
      expect(await perMinute.getAttribute('aria-describedby')).toContain('limit-client-requests-minute-error');
      expect(await page.locator('#minted').isHidden()).toBe(true);
      await shots.take(page, 'validation-error-limit');

      // correcting the field takes its error away: it spoke of the old value
      await perMinute.fill('5');
      expect(await error.isHidden()).toBe(true);
      expect(await perMinute.getAttribute('aria-invalid')).toBeNull();

      // a secret row: the API names serviceSecrets.0.serviceId, shown beside that row's service id
      await perMinute.fill('10');
      await page.getByRole('button', { name: 'Add service secret' }).click();
      await page.getByLabel('Service id 1', { exact: true }).fill(`chat:${'x'.repeat(130)}`);
      await page.getByLabel('Secret 1', { exact: true }).fill('sk-console-test');
      const again = page.waitForResponse((r) => r.url().endsWith('/api/v1/oauth/token'));
      await page.getByRole('button', { name: 'Mint token' }).click();
      expect((await again).status()).toBe(400);
      const serviceError = page.locator('[id$=-service-error]').first();
      await serviceError.waitFor({ state: 'visible' });
      expect(await serviceError.textContent()).toBe('must be at most 128 chars');
      expect(await page.getByLabel('Service id 1', { exact: true }).getAttribute('aria-invalid')).toBe('true');
      expect(await perMinute.getAttribute('aria-invalid')).toBeNull();
      await shots.take(page, 'validation-error-secret');

      // removing the row renumbers the rest; an expiry that is no time span is named before sending
      await page.getByRole('button', { name: 'Remove service secret 1' }).click();
      expect(await page.locator('#secret-rows li').count()).toBe(0);
      await page.getByLabel('Expires after').fill('forever');
      await page.getByRole('button', { name: 'Mint token' }).click();
      const expiryError = page.locator('#expiry-error');
      await expiryError.waitFor({ state: 'visible' });
      expect(await expiryError.textContent()).toContain('not a time span');
      await page.getByLabel('Expires after').fill('400d');
      await page.getByRole('button', { name: 'Mint token' }).click();
      await expect.poll(() => expiryError.textContent()).toContain('longer than this server allows');
      await shots.take(page, 'validation-error-expiry');
    } finally {
      await context.close();
    }
  });

  it('shows every placeholder whole on a 390 px wide phone screen', async () => {
    const context = await chromium.browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US', timezoneId: 'UTC' });
    try {
      const page = await context.newPage();
      await openConsole(page, gw.url);
      await page.getByRole('button', { name: 'Add service secret' }).click();
      const cut = await page.evaluate(() => {
        const canvas = document.createElement('canvas').getContext('2d') as CanvasRenderingContext2D;
        return [...document.querySelectorAll<HTMLInputElement | HTMLTextAreaElement>('input[placeholder], textarea[placeholder]')]
          .filter((field) => field.offsetParent !== null)
          .filter((field) => {
            const style = getComputedStyle(field);
            canvas.font = `${style.fontWeight} ${style.fontSize} ${style.fontFamily}`;
            const room = field.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
            // a pixel to spare: a glyph at the very edge is cut off as it is drawn
            return canvas.measureText(field.placeholder).width + 1 > room;
          })
          .map((field) => `${field.id}: "${field.placeholder}"`);
      });
      await shots.take(page, 'phone-390');
      expect(cut).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('can be used with the keyboard alone', async () => {
    const { context, page, errors } = await newPage(chromium.browser, gw.url);
    const focused = (): Promise<string> => page.evaluate(() => document.activeElement?.id || document.activeElement?.textContent?.trim() || '');
    const tabTo = async (id: string, key: 'Tab' | 'Shift+Tab' = 'Tab', max = 60): Promise<void> => {
      for (let i = 0; i < max; i++) {
        if ((await focused()) === id) return;
        await page.keyboard.press(key);
      }
      throw new Error(`${id} was not reached with ${key} (focus is on "${await focused()}")`);
    };
    try {
      await openConsole(page, gw.url);
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('Skip to content');

      // fill one limit and submit with Enter
      await tabTo('limit-client-requests-minute');
      await page.keyboard.type('3');
      await tabTo('expiry');
      await page.keyboard.press('ControlOrMeta+a');
      await page.keyboard.type('30m');
      await page.keyboard.press('Enter');
      await page.locator('#minted').waitFor({ state: 'visible' });
      expect(await focused()).toBe('minted-title');
      await tabTo('copy-token');
      await page.keyboard.press('Enter');
      const token = await page.locator('#minted-token').inputValue();
      await expect.poll(() => clipboard(page)).toBe(token);
      await shots.take(page, 'keyboard-minted');

      // tabs: arrow keys move between them
      await tabTo('tab-mint', 'Shift+Tab');
      await page.keyboard.press('ArrowRight');
      expect(await focused()).toBe('tab-inspect');
      await page.locator('#token-info').waitFor({ state: 'visible' });
      await page.keyboard.press('ArrowRight');
      expect(await focused()).toBe('tab-try');
      expect(await page.locator('#panel-try').isVisible()).toBe(true);

      // chat: Tab into the panel, type, Enter sends
      await tabTo('chat-input');
      await page.keyboard.type('typed only');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#transcript li.assistant .text').last().textContent()).toContain("'typed only'");
      expect(await focused()).toBe('chat-input');
      await shots.take(page, 'keyboard-chat');

      // revoke dialog: Escape cancels, focus comes back; Enter on Revoke confirms
      await tabTo('tab-try', 'Shift+Tab');
      await page.keyboard.press('ArrowLeft');
      await tabTo('revoke-button');
      await page.keyboard.press('Enter');
      await page.getByRole('dialog').waitFor({ state: 'visible' });
      expect(await focused()).toBe('revoke-cancel');
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
      expect(await focused()).toBe('revoke-button');
      await page.keyboard.press('Enter');
      await page.keyboard.press('Tab');
      expect(await focused()).toBe('revoke-confirm');
      await page.keyboard.press('Enter');
      await expect.poll(() => page.locator('#revoke-result').textContent()).toContain('Revoked');
      await shots.take(page, 'keyboard-revoked');
      expect(unexpected(errors)).toEqual([]);
    } finally {
      await context.close();
    }
  });

  it('labels every control and names every button', async () => {
    const { context, page } = await newPage(chromium.browser, gw.url);
    try {
      await openConsole(page, gw.url);
      await page.getByRole('button', { name: 'Add service secret' }).click();
      expect(await page.getAttribute('html', 'lang')).toBe('en');
      expect(await page.title()).toContain('Console');
      expect(await page.locator('h1').count()).toBe(1);
      expect(await page.getByRole('tab').allTextContents()).toEqual(['Mint', 'Inspect', 'Try']);
      expect(await page.getByRole('tabpanel').count()).toBe(1);

      for (const tab of ['Mint', 'Inspect', 'Try']) {
        await page.getByRole('tab', { name: tab }).click();
        const unlabelled = await page.evaluate(() =>
          [...document.querySelectorAll<HTMLElement>('input, textarea, select, button')]
            .filter((element) => element.offsetParent !== null || element.getClientRects().length > 0)
            .filter((element) => {
              const labelled =
                element instanceof HTMLButtonElement
                  ? (element.textContent ?? '').trim() !== '' || element.hasAttribute('aria-label')
                  : ((element as HTMLInputElement).labels?.length ?? 0) > 0 || element.hasAttribute('aria-label') || element.hasAttribute('aria-labelledby');
              return !labelled;
            })
            .map((element) => element.outerHTML.slice(0, 120)),
        );
        expect(unlabelled, tab).toEqual([]);
      }
      // every label points at a control that exists
      const dangling = await page.evaluate(() =>
        [...document.querySelectorAll('label[for]')].map((l) => l.getAttribute('for') ?? '').filter((id) => document.getElementById(id) === null),
      );
      expect(dangling).toEqual([]);
      // ids are unique
      const ids = await page.evaluate(() => [...document.querySelectorAll('[id]')].map((e) => e.id));
      expect(new Set(ids).size).toBe(ids.length);
    } finally {
      await context.close();
    }
  });

  it('shows a token\'s name and scopes, as text', async () => {
    const token = await mint(gw.url, { requestAuthAndQuotas: {}, name: '<b>ci</b> runner', scopes: ['analytics:read'] } as MintBody);
    const { context, page } = await newPage(chromium.browser, gw.url);
    try {
      await inspectPasted(page, gw.url, token);
      expect(await page.locator('#info-name').textContent()).toBe('<b>ci</b> runner');
      expect(await page.locator('#info-name b').count()).toBe(0);
      expect(await page.locator('#info-scopes').textContent()).toBe('analytics:read');
    } finally {
      await context.close();
    }
  });

  it('keeps the token out of local storage unless "Remember" is ticked', async () => {
    const token = await mint(gw.url);
    const { context, page } = await newPage(chromium.browser, gw.url);
    try {
      await inspectPasted(page, gw.url, token);
      expect(await storedAnywhere(page)).not.toContain('aisbreaker_');

      await page.getByLabel('Remember on this device').check();
      expect(await page.evaluate(() => localStorage.getItem('aisbreaker-console:token'))).toBe(token);
      await page.reload();
      await page.waitForSelector('body[data-ready=true]');
      expect(await page.locator('#current-token').inputValue()).toBe(token);
      expect(await page.getByLabel('Remember on this device').isChecked()).toBe(true);
      // the address never carries it
      expect(page.url()).not.toContain('aisbreaker_');

      await page.getByLabel('Remember on this device').uncheck();
      expect(await page.evaluate(() => localStorage.length)).toBe(0);
      await page.reload();
      await page.waitForSelector('body[data-ready=true]');
      expect(await page.locator('#current-token').inputValue()).toBe('');
    } finally {
      await context.close();
    }
  });

  describe('with an admin key configured', () => {
    let adminGw: GatewayProcess;
    beforeAll(async () => {
      adminGw = await GatewayProcess.start({ AISBREAKER_ADMIN_KEY: ADMIN_KEY });
    });
    afterAll(async () => {
      await adminGw?.stop();
    });

    it('asks for the admin key and keeps it in page memory only', async () => {
        const { context, page } = await newPage(chromium.browser, adminGw.url);
      try {
        await openConsole(page, adminGw.url);
        const adminKey = page.getByLabel('Admin key');
        expect(await adminKey.isVisible()).toBe(true);
        expect(await adminKey.getAttribute('type')).toBe('password');

        await page.getByRole('button', { name: 'Mint token' }).click();
        const error = page.locator('#admin-key-error');
        await expect.poll(() => error.textContent()).toContain('needs its admin key');
        expect(await adminKey.evaluate((e) => e === document.activeElement)).toBe(true);

        await adminKey.fill('not-the-admin-key-at-all');
        await page.getByRole('button', { name: 'Mint token' }).click();
        await expect.poll(() => error.textContent()).toContain('refused');
        await shots.take(page, 'admin-key-refused');

        await adminKey.fill(ADMIN_KEY);
        await page.getByRole('button', { name: 'Mint token' }).click();
        await page.locator('#minted').waitFor({ state: 'visible' });
        expect(await error.isHidden()).toBe(true);
        await shots.take(page, 'admin-key-minted');

        const stored = await storedAnywhere(page);
        expect(stored).not.toContain(ADMIN_KEY);
        await page.reload();
        await page.waitForSelector('body[data-ready=true]');
        expect(await page.getByLabel('Admin key').inputValue()).toBe('');
      } finally {
        await context.close();
      }
    });
  });
});

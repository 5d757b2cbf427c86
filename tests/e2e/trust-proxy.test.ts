import { afterEach, describe, expect, it } from 'vitest';
import { ManualClock } from '../helpers/clock.js';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { startGateway, type TestGateway } from '../helpers/gateway.js';
import { call, errorOf, expectRateLimited, mintLimited, statusOf, statuses } from '../helpers/quota-helpers.js';

/**
 * Who is "a client" for per-client quotas and the API-wide per-address limits: the address Express
 * reports under TRUST_PROXY. X-Forwarded-For is believed only from a trusted proxy; otherwise any
 * caller could pretend to be many clients. Every test client here connects from 127.0.0.1.
 */

let gw: TestGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function start(env: Record<string, string>): Promise<TestGateway> {
  gw = await startGateway(env, { clock: new ManualClock().read });
  return gw;
}

const spoofed = ['1.1.1.1', '2.2.2.2', '3.3.3.3', '4.4.4.4, 5.5.5.5', 'not-an-address'];

describe('TRUST_PROXY decides the client of per-client quotas', () => {
  for (const setting of [undefined, 'false', '10.9.8.7']) {
    it(`without a trusted proxy (TRUST_PROXY=${setting ?? 'unset'}) a spoofed X-Forwarded-For does not create new clients`, async () => {
      const { url } = await start(setting === undefined ? {} : { TRUST_PROXY: setting });
      const token = await mintLimited(url, { client: { requestsPerMinute: 2 } });
      const results: number[] = [];
      for (const xff of spoofed) results.push(await statusOf(await call(url, token, xff)));
      expect(results).toEqual([200, 200, 429, 429, 429]);
      await expectRateLimited(await call(url, token, '9.9.9.9'), { scope: 'client', window: 'minute', limit: 2 });
      // and the one real client is still limited when it sends none
      await expectRateLimited(await call(url, token), { scope: 'client', window: 'minute', limit: 2 });
    });
  }

  it('an IPv6 client is its /64: rotating addresses inside it is still one client; another /64 is another client', async () => {
    const { url } = await start({ TRUST_PROXY: 'loopback' });
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 } });
    const sameNetwork = ['2001:db8:1:2::1', '2001:DB8:1:2:ffff:ffff:ffff:ffff', '2001:0db8:0001:0002::abcd'];
    const results: number[] = [];
    for (const xff of sameNetwork) results.push(await statusOf(await call(url, token, xff)));
    expect(results).toEqual([200, 200, 429]);
    await expectRateLimited(await call(url, token, '2001:db8:1:2:5:6:7:8'), { scope: 'client', window: 'minute', limit: 2 });
    expect(await statusOf(await call(url, token, '2001:db8:1:3::1'))).toBe(200);
    // an IPv4 client on a dual-stack socket stays one address
    expect(await statuses(3, () => call(url, token, '::ffff:10.0.0.1'))).toEqual([200, 200, 429]);
    expect(await statusOf(await call(url, token, '::ffff:10.0.0.2'))).toBe(200);
  });

  it('with TRUST_PROXY=loopback each forwarded address is a client of its own, and the global limit still holds', async () => {
    const { url } = await start({ TRUST_PROXY: 'loopback' });
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 }, global: { requestsPerMinute: 5 } });
    expect(await statuses(3, () => call(url, token, '1.1.1.1'))).toEqual([200, 200, 429]);
    expect(await statuses(3, () => call(url, token, '2.2.2.2'))).toEqual([200, 200, 429]);
    expect(await statusOf(await call(url, token, '3.3.3.3'))).toBe(200);
    await expectRateLimited(await call(url, token, '4.4.4.4'), { scope: 'global', window: 'minute', limit: 5 });
  });

  it('with TRUST_PROXY=1 (one hop) only the address the proxy saw counts: prepended entries are ignored', async () => {
    const { url } = await start({ TRUST_PROXY: '1' });
    const token = await mintLimited(url, { client: { requestsPerMinute: 2 } });
    // the proxy appends the real peer (7.7.7.7); the client wrote the rest itself
    const results: number[] = [];
    for (const fake of ['1.1.1.1', '2.2.2.2', '3.3.3.3']) results.push(await statusOf(await call(url, token, `${fake}, 7.7.7.7`)));
    expect(results).toEqual([200, 200, 429]);
    expect(await statusOf(await call(url, token, '8.8.8.8'))).toBe(200);
  });

  it('API-wide limits count the same address: spoofing X-Forwarded-For does not escape the mint limit', async () => {
    const { url } = await start({ API_MINT_LIMITS: '2/minute' });
    const results: number[] = [];
    for (const xff of spoofed.slice(0, 4)) {
      const res = await fetch(`${url}/api/v1/oauth/token`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'X-Forwarded-For': xff },
        body: JSON.stringify({ requestAuthAndQuotas: {} }),
      });
      results.push(res.status);
      if (res.status === 429) expect((await errorOf(res)).details).toMatchObject({ scope: 'api', window: 'minute', limit: 2 });
      else await res.arrayBuffer();
    }
    expect(results).toEqual([200, 200, 429, 429]);
  });

  it('a TRUST_PROXY Express cannot understand stops the start with one clear line', async () => {
    const error = await GatewayProcess.start({ TRUST_PROXY: 'not-an-address' }).then(
      async (gateway) => {
        await gateway.stop();
        return undefined;
      },
      (err: unknown) => err as Error,
    );
    expect(error, 'the gateway started with TRUST_PROXY=not-an-address').toBeInstanceOf(Error);
    expect(error?.message).toContain('exited with 2');
    expect(error?.message).toMatch(/config error: TRUST_PROXY: .*not-an-address/);
    expect(error?.message).not.toMatch(/\n\s+at /); // no stack trace
  });
});

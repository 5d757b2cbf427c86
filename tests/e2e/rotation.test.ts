import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectError, expectServes, getJson, mintRaw, postForm, runCli, tokenHeader, useToken } from '../helpers/lifecycle-helpers.js';

/** The README's "Rotating the secret", step by step, on the built gateway in processes of its own. */
describe('secret rotation runbook (README), with real gateway processes', () => {
  const OLD_SECRET = 'the-old-production-secret-0123456789-abcdefgh';
  let newSecret: string;
  let running: GatewayProcess | undefined;

  afterAll(async () => {
    await running?.stop();
  });

  it('old tokens keep working with the old secret in AISBREAKER_PREVIOUS_SECRETS, and stop once it is dropped', async () => {
    // before: an instance with the old secret hands out a long-lived token (tokens are stateless:
    // which process minted it does not matter, so this one runs in the test's process)
    const before = await startGateway({ AISBREAKER_SECRET: OLD_SECRET });
    const oldToken = await mint(before.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerDay: 100 } } }, expirationTimeSpan: '30d' });
    await expectServes(before.url, oldToken);
    await before.close();
    const oldKid = tokenHeader(oldToken).kid;

    // 1. npx aisbreaker-gateway gen-secret
    const generated = await runCli(['gen-secret'], { AISBREAKER_SECRET: OLD_SECRET });
    expect(generated.code).toBe(0);
    newSecret = generated.stdout.trim();
    expect(newSecret).not.toBe(OLD_SECRET);

    // 2. restart with AISBREAKER_SECRET=<new> and AISBREAKER_PREVIOUS_SECRETS=<old>
    running = await GatewayProcess.start({ AISBREAKER_SECRET: newSecret, AISBREAKER_PREVIOUS_SECRETS: OLD_SECRET });
    await expectServes(running.url, oldToken);
    const oldInfo = await getJson<{ requestQuotas: unknown }>(`${running.url}/api/v1/oauth/tokeninfo`, { Authorization: `Bearer ${oldToken}` });
    expect(oldInfo.json.requestQuotas).toEqual({ globalRequestLimits: { requestsPerDay: 100 } });
    const newToken = await mint(running.url, { requestAuthAndQuotas: {}, expirationTimeSpan: '30d' });
    // new tokens use the new secret: its kid is in the header
    expect(tokenHeader(newToken).kid).not.toBe(oldKid);
    await expectServes(running.url, newToken);
    // a child of an old token is made with the new secret
    const child = await mintRaw(running.url, { requestAuthAndQuotas: {} }, { Authorization: `Bearer ${oldToken}` });
    expect(child.status, child.text).toBe(200);
    expect(tokenHeader(child.json.access_token).kid).toBe(tokenHeader(newToken).kid);
    // the CLI opens both with the same settings
    const inspected = await runCli(['inspect', oldToken], { AISBREAKER_SECRET: newSecret, AISBREAKER_PREVIOUS_SECRETS: OLD_SECRET });
    expect(inspected.code, inspected.stderr).toBe(0);

    // 3. once the old tokens have expired, drop the old secret: its tokens are refused from then on
    expect(await running.stop()).toBe(0);
    running = await GatewayProcess.start({ AISBREAKER_SECRET: newSecret });
    expectError(await useToken(running.url, oldToken), 401, 'INVALID_API_KEY');
    await expectServes(running.url, newToken);
    await expectServes(running.url, child.json.access_token);
    const refused = await runCli(['inspect', oldToken], { AISBREAKER_SECRET: newSecret });
    expect(refused.code).toBe(1);
    expect(running.output.join('\n')).not.toContain(newSecret);
    expect(running.output.join('\n')).not.toContain(OLD_SECRET);
  }, 60_000); // two gateway processes and three CLI runs: slow on a loaded machine
});

describe('AISBREAKER_PREVIOUS_SECRETS (in-process)', () => {
  const A = 'secret-a-0123456789-abcdefghijklmnopqrstuv';
  const B = 'secret-b-0123456789-abcdefghijklmnopqrstuv';
  const C = 'secret-c-0123456789-abcdefghijklmnopqrstuv';
  const gateways: TestGateway[] = [];
  const start = async (env: Record<string, string>): Promise<TestGateway> => {
    const gw = await startGateway(env);
    gateways.push(gw);
    return gw;
  };
  let tokenA: string;
  let tokenB: string;
  beforeAll(async () => {
    tokenA = await mint((await start({ AISBREAKER_SECRET: A })).url);
    tokenB = await mint((await start({ AISBREAKER_SECRET: B })).url);
  });
  afterAll(async () => {
    await Promise.all(gateways.map((gw) => gw.close()));
  });

  it('accepts tokens of every comma-separated previous secret, and mints with the current one only', async () => {
    const gw = await start({ AISBREAKER_SECRET: C, AISBREAKER_PREVIOUS_SECRETS: `${A}, ${B}` });
    await expectServes(gw.url, tokenA);
    await expectServes(gw.url, tokenB);
    const fresh = await mint(gw.url);
    expect(tokenHeader(fresh).kid).not.toBe(tokenHeader(tokenA).kid);
    expect(tokenHeader(fresh).kid).not.toBe(tokenHeader(tokenB).kid);
    // a gateway that knows only A does not accept C's token
    expectError(await useToken(gateways[0]?.url ?? '', fresh), 401, 'INVALID_API_KEY');
  });

  it('refuses tokens of a secret that is no longer listed, and revocation works on old tokens while they are accepted', async () => {
    const gw = await start({ AISBREAKER_SECRET: C, AISBREAKER_PREVIOUS_SECRETS: B });
    expectError(await useToken(gw.url, tokenA), 401, 'INVALID_API_KEY');
    await expectServes(gw.url, tokenB);
    expect((await postForm<{ revoked: boolean }>(`${gw.url}/api/v1/oauth/revoke`, { token: tokenB })).json.revoked).toBe(true);
    expectError(await useToken(gw.url, tokenB), 401, 'REVOKED_API_KEY');
  });

  it('refuses to start with a too-short previous secret', async () => {
    await expect(startGateway({ AISBREAKER_SECRET: C, AISBREAKER_PREVIOUS_SECRETS: `${A},too-short` })).rejects.toThrow(/AISBREAKER_PREVIOUS_SECRETS: entry 2 is too short/);
  });
});

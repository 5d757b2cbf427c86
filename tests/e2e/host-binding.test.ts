import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';
import { expectServes, parseError, rawRequest, type RawResponse } from '../helpers/lifecycle-helpers.js';

const MINT_BODY = JSON.stringify({ requestAuthAndQuotas: {}, expirationTimeSpan: '1h' });

function mintWith(gw: TestGateway, headers: Record<string, string>): Promise<RawResponse> {
  return rawRequest(`${gw.url}/api/v1/oauth/token`, { method: 'POST', headers: { 'Content-Type': 'application/json', ...headers }, body: MINT_BODY });
}

function tokenOf(res: RawResponse): string {
  expect(res.status, res.body).toBe(200);
  return (JSON.parse(res.body) as { access_token: string }).access_token;
}

function use(gw: TestGateway, token: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(`${gw.url}/api/v1/process`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...headers },
    body: processBody('chat:dummy', 'where am I'),
  });
}

function tokenInfoHost(gw: TestGateway, token: string, headers: Record<string, string> = {}): Promise<RawResponse> {
  return rawRequest(`${gw.url}/api/v1/oauth/tokeninfo`, { headers: { Authorization: `Bearer ${token}`, ...headers } });
}

describe('host binding (no proxy trusted)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('binds the token to the host it was minted on; another host gets 401 WRONG_HOST', async () => {
    const token = await mint(gw.url); // minted on 127.0.0.1
    await expectServes(gw.url, token);
    // the port is no part of the host
    expect((await use(gw, token, { Host: `127.0.0.1:${gw.port}` })).status).toBe(200);
    for (const host of ['localhost', 'api.example.com', '127.0.0.2', `localhost:${gw.port}`]) {
      const res = await use(gw, token, { Host: host });
      expect(res.status, host).toBe(401);
      const error = parseError(res);
      expect(error.code).toBe('WRONG_HOST');
      expect(res.body).not.toContain(token.slice(11, 50));
    }
  });

  it('a token minted for api.example.com works there and nowhere else; tokeninfo names the host', async () => {
    const token = tokenOf(await mintWith(gw, { Host: 'api.example.com' }));
    expect((await use(gw, token, { Host: 'api.example.com' })).status).toBe(200);
    expect(parseError(await use(gw, token)).code).toBe('WRONG_HOST');
    expect(parseError(await use(gw, token, { Host: 'example.com' })).code).toBe('WRONG_HOST');
    expect(parseError(await use(gw, token, { Host: 'evil-api.example.com' })).code).toBe('WRONG_HOST');
    const info = await tokenInfoHost(gw, token, { Host: 'api.example.com' });
    expect((JSON.parse(info.body) as { host: string }).host).toBe('api.example.com');
    expect(parseError(await tokenInfoHost(gw, token)).code).toBe('WRONG_HOST');
  });

  it('treats host names case-insensitively, as DNS does', async () => {
    const token = tokenOf(await mintWith(gw, { Host: 'API.Example.com' }));
    expect((await use(gw, token, { Host: 'api.example.com' })).status).toBe(200);
    expect((await use(gw, token, { Host: 'API.EXAMPLE.COM' })).status).toBe(200);
  });

  it('ignores X-Forwarded-Host while no proxy is trusted: a client cannot pick the binding', async () => {
    const token = tokenOf(await mintWith(gw, { 'X-Forwarded-Host': 'api.example.com' }));
    expect((await use(gw, token)).status).toBe(200);
    expect(parseError(await use(gw, token, { Host: 'api.example.com' })).code).toBe('WRONG_HOST');
    // nor can a forwarded host make a token of another host acceptable
    const other = tokenOf(await mintWith(gw, { Host: 'api.example.com' }));
    expect(parseError(await use(gw, other, { 'X-Forwarded-Host': 'api.example.com' })).code).toBe('WRONG_HOST');
  });
});

describe('host binding behind a trusted proxy (TRUST_PROXY=loopback)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ TRUST_PROXY: 'loopback' });
  });
  afterAll(() => gw.close());

  it('binds to the Host header, not to X-Forwarded-Host: a proxy passing a client\'s header on cannot make the binding worthless', async () => {
    // a mint cannot bind the token to a victim's host
    const minted = tokenOf(await mintWith(gw, { 'X-Forwarded-Host': 'victim.example.com' }));
    expect((await use(gw, minted)).status).toBe(200);
    expect(parseError(await use(gw, minted, { Host: 'victim.example.com' })).code).toBe('WRONG_HOST');
    // nor can a forwarded host make a token bound to 127.0.0.1 acceptable under another Host
    expect(parseError(await use(gw, minted, { Host: 'evil.example.com', 'X-Forwarded-Host': '127.0.0.1' })).code).toBe('WRONG_HOST');
  });
});

describe('host binding with TRUST_FORWARDED_HOST=on (the trusted proxy sets X-Forwarded-Host)', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway({ TRUST_PROXY: 'loopback', TRUST_FORWARDED_HOST: 'on' });
  });
  afterAll(() => gw.close());

  it('binds to the forwarded host and checks it the same way', async () => {
    const token = tokenOf(await mintWith(gw, { 'X-Forwarded-Host': 'api.example.com' }));
    expect((await use(gw, token, { 'X-Forwarded-Host': 'api.example.com' })).status).toBe(200);
    expect(parseError(await use(gw, token)).code).toBe('WRONG_HOST');
    expect(parseError(await use(gw, token, { 'X-Forwarded-Host': 'other.example.com' })).code).toBe('WRONG_HOST');
  });

  it('refuses to start without a trusted proxy, or with a value it does not know', async () => {
    await expect(startGateway({ TRUST_FORWARDED_HOST: 'on' })).rejects.toThrow(/TRUST_FORWARDED_HOST: "on" needs TRUST_PROXY/);
    await expect(startGateway({ TRUST_PROXY: 'loopback', TRUST_FORWARDED_HOST: 'yes' })).rejects.toThrow(/TRUST_FORWARDED_HOST: must be "on" or "off", not "yes"/);
  });
});

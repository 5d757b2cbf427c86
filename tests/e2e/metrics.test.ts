import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';

describe('GET /metrics', () => {
  let gw: TestGateway;
  const authSecret = 'sk-metrics-secret-value-0123456789';
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('counts requests by route pattern, quota decisions and mints, and never shows a credential', async () => {
    const token = await mint(gw.url, {
      requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 1 } }, serviceSecrets: [{ serviceId: 'chat:dummy', authSecret }] },
    });
    expect((await postProcess(gw.url, token, processBody('chat:dummy', 'one'))).status).toBe(200);
    expect((await postProcess(gw.url, token, processBody('chat:dummy', 'two'))).status).toBe(429);
    await fetch(`${gw.url}/no/such/path?token=${token}`);

    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    expect(text).toMatch(/aisbgw_http_requests_total\{route="\/api\/v1\/process",method="POST",status="200",service="chat:dummy"\} 1/);
    expect(text).toMatch(/aisbgw_http_requests_total\{route="\/api\/v1\/process",method="POST",status="429",service=""\} 1/);
    expect(text).toMatch(/aisbgw_http_requests_total\{route="unmatched",method="GET",status="404",service=""\} 1/);
    expect(text).toMatch(/aisbgw_quota_decisions_total\{outcome="denied",scope="global",window="minute"\} 1/);
    expect(text).toMatch(/aisbgw_tokens_minted_total\{kind="new"\} 1/);
    expect(text).toContain('aisbgw_process_cpu_user_seconds_total');
    expect(text).not.toContain(token.slice(11, 60));
    expect(text).not.toContain(authSecret);
    expect(text).not.toContain('/no/such/path');
  });
});

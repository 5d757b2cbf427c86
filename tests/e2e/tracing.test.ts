import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { GatewayProcess } from '../helpers/gateway-process.js';
import { mint } from '../helpers/gateway.js';
import { MOCK_USAGE, MockOpenAi } from '../helpers/mock-openai.js';
import { OtlpReceiver } from '../helpers/otlp-receiver.js';

/**
 * OpenTelemetry: the built gateway exporting to a local OTLP/HTTP receiver, in front of a mock
 * OpenAI upstream. Spans carry the GenAI attributes and the quota decision, the upstream gets the
 * span's traceparent, and nothing secret or said in a message reaches the receiver.
 */

const UPSTREAM_SECRET = 'sk-tracing-test-secret-2718281828459045';
const MESSAGE = 'a message text that must never be traced 7f3a';
const CALLER_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const CALLER_SPAN_ID = '00f067aa0ba902b7';

function chat(url: string, token: string, body: Record<string, unknown>, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify({ messages: [{ role: 'user', content: MESSAGE }], ...body }),
  });
}

describe('tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)', { timeout: 60_000 }, () => {
  let receiver: OtlpReceiver;
  let upstream: MockOpenAi;
  let gateway: GatewayProcess;
  let token: string;

  beforeAll(async () => {
    receiver = await OtlpReceiver.start();
    upstream = await MockOpenAi.start();
    gateway = await GatewayProcess.start({
      OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint,
      OTEL_SERVICE_NAME: 'gateway-under-test',
      // export every 50 ms instead of every 5 s
      OTEL_BSP_SCHEDULE_DELAY: '50',
      OPENAI_BASE_URL: upstream.baseUrl,
    });
    token = await mint(gateway.url, { requestAuthAndQuotas: { requestQuotas: { globalRequestLimits: { requestsPerMinute: 2 } }, serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
  });

  afterAll(async () => {
    await gateway?.stop();
    await upstream?.close();
    await receiver?.close();
  });

  it('a chat completion is one span with the GenAI attributes, a child of the caller\'s traceparent, whose traceparent the upstream gets', async () => {
    const res = await chat(gateway.url, token, { model: 'gpt-4o-mini' }, { traceparent: `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01` });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const span = await receiver.span((s) => s.traceId === CALLER_TRACE_ID && s.name === 'chat gpt-4o-mini');
    expect(span.parentSpanId).toBe(CALLER_SPAN_ID);
    expect(span.resource['service.name']).toBe('gateway-under-test');
    expect(span.attributes).toMatchObject({
      'gen_ai.operation.name': 'chat',
      'gen_ai.provider.name': 'openai',
      'gen_ai.request.model': 'gpt-4o-mini',
      'gen_ai.response.model': 'gpt-4o-mini',
      'gen_ai.usage.input_tokens': MOCK_USAGE.prompt_tokens,
      'gen_ai.usage.output_tokens': MOCK_USAGE.completion_tokens,
      'aisbreaker.service.id': 'chat:openai.com',
      'http.route': '/v1/chat/completions',
      'http.response.status_code': 200,
    });
    const decision = span.events.find((e) => e.name === 'aisbreaker.quota.decision');
    expect(decision?.attributes).toMatchObject({ 'aisbreaker.quota.outcome': 'admitted', 'aisbreaker.quota.window': 'minute', 'aisbreaker.quota.limit': 2 });
    // W3C trace context to the upstream: same trace, this span as parent
    const sent = upstream.received.at(-1);
    expect(sent?.headers.traceparent).toBe(`00-${CALLER_TRACE_ID}-${span.spanId}-01`);
  });

  it('a stream\'s usage reaches its span; a request without traceparent starts a trace of its own', async () => {
    const res = await chat(gateway.url, token, { model: 'chat:openai.com/gpt-4o', stream: true });
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('[DONE]');
    const span = await receiver.span((s) => s.name === 'chat gpt-4o');
    expect(span.parentSpanId ?? '').toBe('');
    expect(span.traceId).not.toBe(CALLER_TRACE_ID);
    expect(span.attributes).toMatchObject({ 'gen_ai.usage.input_tokens': MOCK_USAGE.prompt_tokens, 'gen_ai.usage.output_tokens': MOCK_USAGE.completion_tokens, 'gen_ai.response.model': 'gpt-4o' });
    expect(upstream.received.at(-1)?.headers.traceparent).toMatch(new RegExp(`^00-${span.traceId}-${span.spanId}-01$`));
  });

  it('a request over its quota has a span with the denial as event, and no call', async () => {
    const before = upstream.received.length;
    const res = await chat(gateway.url, token, { model: 'gpt-4o-mini' }, { traceparent: `00-${'a'.repeat(32)}-${CALLER_SPAN_ID}-01` });
    expect(res.status).toBe(429);
    await res.arrayBuffer();
    expect(upstream.received.length).toBe(before);
    const span = await receiver.span((s) => s.traceId === 'a'.repeat(32));
    expect(span.attributes).toMatchObject({ 'http.response.status_code': 429, 'error.type': '429' });
    expect(span.attributes['gen_ai.request.model']).toBeUndefined();
    const decision = span.events.find((e) => e.name === 'aisbreaker.quota.decision');
    expect(decision?.attributes).toMatchObject({ 'aisbreaker.quota.outcome': 'denied', 'aisbreaker.quota.scope': 'global', 'aisbreaker.quota.window': 'minute', 'aisbreaker.quota.limit': 2 });
    expect(Number(decision?.attributes['aisbreaker.quota.retry_after_ms'])).toBeGreaterThan(0);
  });

  it('never exports a secret, the token or message content', async () => {
    await receiver.span((s) => s.traceId === 'a'.repeat(32));
    const exported = receiver.raw.join('\n');
    expect(exported.length).toBeGreaterThan(0);
    for (const secret of [UPSTREAM_SECRET, token, token.slice('aisbreaker_'.length, 60), MESSAGE, 'Mock says']) expect(exported).not.toContain(secret);
  });

  it('names the tracing endpoint in the start banner', () => {
    const listening = gateway.output.find((line) => line.includes('aisbreaker-gateway listening'));
    expect(JSON.parse(listening ?? '{}')).toMatchObject({ tracing: `OpenTelemetry, OTLP to ${receiver.endpoint}/` });
  });
});

describe('tracing off (no OTLP endpoint)', { timeout: 30_000 }, () => {
  it('sends no traceparent upstream, passes none on from the caller, and says so in the banner', async () => {
    const upstream = await MockOpenAi.start();
    const gateway = await GatewayProcess.start({ OPENAI_BASE_URL: upstream.baseUrl });
    try {
      const token = await mint(gateway.url, { requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'chat:openai.com', authSecret: UPSTREAM_SECRET }] } });
      const res = await chat(gateway.url, token, { model: 'gpt-4o-mini' }, { traceparent: `00-${CALLER_TRACE_ID}-${CALLER_SPAN_ID}-01` });
      expect(res.status).toBe(200);
      expect(upstream.received.at(-1)?.headers.traceparent).toBeUndefined();
      const listening = gateway.output.find((line) => line.includes('aisbreaker-gateway listening'));
      expect(JSON.parse(listening ?? '{}')).toMatchObject({ tracing: 'off (OTEL_EXPORTER_OTLP_ENDPOINT turns it on)' });
    } finally {
      await gateway.stop();
      await upstream.close();
    }
  });
});


import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mint, postProcess, processBody, startGateway, type TestGateway } from '../helpers/gateway.js';

describe('smoke: mint a token and use it on chat:dummy', () => {
  let gw: TestGateway;
  beforeAll(async () => {
    gw = await startGateway();
  });
  afterAll(() => gw.close());

  it('answers ping', async () => {
    const res = await fetch(`${gw.url}/api/v1/ping`);
    expect(await res.json()).toEqual({ message: 'api-pong' });
  });

  it('mints and processes', async () => {
    const token = await mint(gw.url);
    expect(token.startsWith('aisbreaker_')).toBe(true);
    const res = await postProcess(gw.url, token, processBody('chat:dummy', 'Hi'));
    expect(res.status).toBe(200);
    const json = (await res.json()) as { outputs: { text: { content: string } }[] };
    expect(json.outputs[0]?.text.content).toBe("Hello, the answer to 'Hi' from DummyAssistantService is unknown ...");
  });
});

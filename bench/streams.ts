import { Agent, request } from 'undici';
import type { BenchProcess } from './processes.js';

export interface OpenStreamsResult {
  completed: number;
  failed: number;
  slowestMs: number;
  peakRssMb: number;
}

/**
 * Opens `count` streaming chat completions at once through the gateway and reads each to its end
 * (`data: [DONE]`). The upstream sends slowly, so all streams are open together: the gateway's
 * peak RSS shows what an open stream costs, and a stall shows as a slow or failed stream.
 */
export async function runOpenStreams(gateway: BenchProcess, token: string, body: string, count: number): Promise<OpenStreamsResult> {
  const agent = new Agent({ connections: count, pipelining: 0 });
  let completed = 0;
  let failed = 0;
  let slowestMs = 0;
  await Promise.all(
    Array.from({ length: count }, async () => {
      const started = performance.now();
      try {
        const res = await request(`http://127.0.0.1:${gateway.port}/v1/chat/completions`, {
          method: 'POST',
          dispatcher: agent,
          headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
          body,
          headersTimeout: 30_000,
          bodyTimeout: 30_000,
        });
        const text = await res.body.text();
        if (res.statusCode === 200 && text.includes('[DONE]')) completed++;
        else failed++;
      } catch {
        failed++;
      }
      slowestMs = Math.max(slowestMs, performance.now() - started);
    }),
  );
  await agent.close();
  return { completed, failed, slowestMs, peakRssMb: gateway.peakRssMb() };
}

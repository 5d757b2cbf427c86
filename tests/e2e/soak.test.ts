import { describe, expect, it } from 'vitest';
import { mintToken } from '../../src/token/codec.js';
import { Keyring } from '../../src/token/keyring.js';
import { TokenVerifier } from '../../src/token/verifier.js';
import { formatReport, runSoak } from '../../scripts/soak.js';

/**
 * A short soak (the `npm run soak` script, in-process): mixed traffic for a few seconds, streams
 * abandoned by the client included, then no errors and nothing left behind: no handles, sockets or timers beyond those before the start, no
 * server connection once the client closed, no extra listeners, heap after GC within a bound.
 */
describe('soak (short)', () => {
  it('mixed traffic for 6 s: no errors, no leaked handles, sockets, timers or listeners, bounded heap', async () => {
    const report = await runSoak({ durationMs: 6000, maxRequests: 2500, concurrency: 6, intervals: 4 });
    console.log(formatReport(report));
    expect(report.requests).toBeGreaterThan(100);
    expect(report.errorSamples).toEqual([]);
    expect(report.errors).toBe(0);
    for (const [kind, stats] of Object.entries(report.byKind)) expect({ kind, count: stats.count > 0 }).toEqual({ kind, count: true });
    expect(report.resources.leaked).toEqual({});
    expect(report.serverConnectionsAfterClientClose).toBe(0);
    expect(report.serverListeners.after).toBe(report.serverListeners.before);
    // the abandoned streams really were cut in the middle, from the server's side too
    expect(report.serverIncompleteResponses).toBeGreaterThan(0);
    expect(report.memory.gcAvailable).toBe(true);
    // warm heap after GC: new tokens (cache, quota counters) cost a few hundred bytes each; a leak of
    // anything per request (a listener holding a request, a timer per stream) would cost far more
    expect(report.memory.heapGrowthMb).toBeLessThan(12);
  });

  it('the token cache stays within its bound under a stream of distinct valid tokens', async () => {
    const keyring = new Keyring('soak-cache-secret-0123456789-abcdefghijklmn');
    const verifier = new TokenVerifier(keyring, () => Date.now(), 64);
    const now = Date.now();
    const tokens = await Promise.all(
      Array.from({ length: 600 }, () => mintToken({ host: 'h', requestQuotas: {}, serviceSecrets: [], lifetimeSeconds: 600 }, keyring, now).then((m) => m.token)),
    );
    for (const token of tokens) await verifier.open(token);
    expect(verifier.cachedCount).toBe(64);
    // the newest are the ones kept; the oldest open again (decrypting) and the bound still holds
    for (const token of tokens.slice(0, 100)) await verifier.open(token);
    expect(verifier.cachedCount).toBe(64);
  });
});

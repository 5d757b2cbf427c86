import { describe, expect, it } from 'vitest';
import { MIN_QUOTED_RUN, upstreamMessage } from '../../src/services/upstream.js';

describe('upstreamMessage: what a caller may see of an upstream error', () => {
  const secret = 'sk-proj-oj-VICTIM3+SECRET/9f8e7d6c5b4a';

  it('removes the whole secret, and every run of 8 or more of its characters, wherever it stands', () => {
    expect(upstreamMessage(`bad key ${secret}.`, secret)).toBe('bad key [redacted].');
    expect(upstreamMessage(`mid=${secret.slice(8, 26)}/x`, secret)).toBe('mid=[redacted]/x');
    expect(upstreamMessage(`head ${secret.slice(0, 8)} and tail ${secret.slice(-8)}`, secret)).toBe('head [redacted] and tail [redacted]');
    // seven characters are no quote; neither are ordinary words
    expect(upstreamMessage(`short ${secret.slice(10, 10 + MIN_QUOTED_RUN - 1)} organization`, secret)).toBe(`short ${secret.slice(10, 17)} organization`);
    for (let start = 0; start + MIN_QUOTED_RUN <= secret.length; start++) {
      const shown = upstreamMessage(`x${secret.slice(start, start + MIN_QUOTED_RUN)}y`, secret);
      expect(shown).toBe('x[redacted]y');
    }
  });

  it('keeps the "aisbreaker" prefix every token shares readable, and removes the token itself', () => {
    const token = 'aisbreaker_eyJhbGciOiJkaXIiLCJlbmMiOiJBMjU2R0NNIn0..abcdefghijklmnop.QRSTUVWXYZ0123456789.tag0123456789';
    expect(upstreamMessage('service aisbreaker:network failed; aisbreaker_ tokens only', token)).toBe('service aisbreaker:network failed; aisbreaker_ tokens only');
    expect(upstreamMessage(`token ${token} refused`, token)).toBe('token [redacted] refused');
    expect(upstreamMessage(`quoted QRSTUVWXYZ0123 here`, token)).toBe('quoted [redacted] here');
  });

  it('cuts long messages to a readable length', () => {
    expect(upstreamMessage('x'.repeat(10_000), undefined)).toHaveLength(1000);
  });
});

import { describe, expect, it } from 'vitest';
import { TOKEN_ID, coversServiceId } from '../../src/token/claims.js';

describe('coversServiceId: which services a serviceSecrets entry is for', () => {
  it('covers the id itself and ids below it at a "/" boundary; "" covers all', () => {
    const table: [string, string, boolean][] = [
      ['chat:openai.com', 'chat:openai.com', true],
      ['chat:openai.com', 'chat:openai.com/gpt-4o', true],
      ['chat:openai.com', 'chat:openai.com-eu', false],
      ['chat:openai.com', 'chat:openai.com-eu/gpt-4o', false],
      ['chat:openai.com', 'chat:openai.comx/gpt-4o', false],
      ['chat:openai.com/gpt-4o', 'chat:openai.com/gpt-4o-mini', false],
      ['chat:openai.com/gpt-4o', 'chat:openai.com', false],
      ['chat:', 'chat:openai.com', false],
      ['', 'chat:anything', true],
    ];
    for (const [entry, service, covered] of table) expect([entry, service, coversServiceId(entry, service)]).toEqual([entry, service, covered]);
  });
});

describe('TOKEN_ID: the forms a token id takes', () => {
  it('is 128 random bits, a legacy id, or a family root with an own part', () => {
    for (const id of ['AAAAAAAAAAAAAAAAAAAAAA', 'legacy-AAAAAAAAAAAAAAAAAAAA-_', 'AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB', 'legacy-AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB']) {
      expect(TOKEN_ID.test(id), id).toBe(true);
    }
    for (const id of ['', 'short', 'AAAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAA.', 'a.b.c', 'legacy_AAAAAAAAAAAAAAAAAAAAAA', 'AAAAAAAAAAAAAAAAAAAAAA.BBBBBBBBBBBBBBBBBBBBBB.CCCCCCCCCCCCCCCCCCCCCC', 'aisbgw:{x}:y AAAAAAAAAAAAAA']) {
      expect(TOKEN_ID.test(id), id).toBe(false);
    }
  });
});

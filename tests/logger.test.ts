import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../src/logger.js';

function capture(): { lines: string[]; stream: Writable } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      lines.push(chunk.toString('utf8'));
      callback();
    },
  });
  return { lines, stream };
}

describe('log redaction', () => {
  it('censors every header and field that can hold a credential or a third-party secret', () => {
    const { lines, stream } = capture();
    const logger = createLogger('info', stream);
    const secret = 'sk-very-secret-value-42';
    logger.info({ authorization: `Bearer ${secret}`, token: secret, access_token: secret, secret, authSecret: secret, clientSecret: secret, apiKey: secret, adminKey: secret }, 'flat');
    logger.info({ headers: { authorization: secret, 'api-key': secret, 'x-api-key': secret, cookie: secret } }, 'headers');
    logger.info({ req: { headers: { authorization: secret, 'api-key': secret, 'x-api-key': secret, cookie: secret } } }, 'req');
    logger.info({ serviceSecrets: [{ serviceId: 'a', authSecret: secret }] }, 'claims');
    logger.info({ claims: { serviceSecrets: [{ serviceId: 'a', authSecret: secret }] } }, 'nested claims');
    logger.info({ body: { clientSecret: secret, requestAuthAndQuotas: { serviceSecrets: [{ serviceId: 'a', authSecret: secret }] } } }, 'body');
    expect(lines).toHaveLength(6);
    for (const line of lines) {
      expect(line).not.toContain(secret);
      expect(line).toContain('[redacted]');
    }
    // what is not secret stays readable
    expect(lines[3]).toContain('"serviceId":"a"');
  });
});

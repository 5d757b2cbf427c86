import { pino, type DestinationStream, type Logger } from 'pino';

/**
 * Every path that can hold a credential or a third-party secret. The request logger never logs
 * headers or bodies; this list is the second line of defence for code that logs an object.
 */
export const REDACT_PATHS = [
  'authorization',
  'token',
  'access_token',
  'secret',
  'authSecret',
  'clientSecret',
  'apiKey',
  'adminKey',
  'headers.authorization',
  'headers["api-key"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["api-key"]',
  'req.headers.cookie',
  'serviceSecrets[*].authSecret',
  '*.serviceSecrets[*].authSecret',
  'requestAuthAndQuotas.serviceSecrets[*].authSecret',
  'body.requestAuthAndQuotas.serviceSecrets[*].authSecret',
  'body.clientSecret',
];

/**
 * JSON lines to `destination`, by default stdout written asynchronously: the lines of requests
 * that end while a write is under way go out together, not one write(2) per request. Whoever
 * exits the process flushes first (see server.ts).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const target = destination ?? pino.destination({ dest: 1, sync: false });
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'aisbreaker-gateway' } }, target);
}

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

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino({ level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'aisbreaker-gateway' } }, destination);
}

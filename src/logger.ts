import { createRequire } from 'node:module';
import { pino, type DestinationStream, type Logger } from 'pino';
import type { MessageFormatFunc, PrettyOptions, PrettyStream } from 'pino-pretty';

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
  'headers["x-api-key"]',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers["api-key"]',
  'req.headers["x-api-key"]',
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
 * exits the process flushes first (see server.ts). When stdout is a terminal, a person reads it:
 * one readable line per entry instead (redaction applies alike, before either).
 */
export function createLogger(level: string, destination?: DestinationStream): Logger {
  const target = destination ?? (process.stdout.isTTY ? humanReadable() : pino.destination({ dest: 1, sync: false }));
  return pino(
    { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' }, base: { service: 'aisbreaker-gateway' }, timestamp: pino.stdTimeFunctions.isoTime },
    target,
  );
}

/** The access line's fields, shown as one "POST /v1/chat/completions 200 12.3 ms chat:openai.com" instead of one line each. */
const ACCESS_FIELDS = ['reqId', 'method', 'path', 'status', 'ms', 'credential', 'project', 'completed'];

const accessLineFormat: MessageFormatFunc = (log, messageKey) => {
  const message = String(log[messageKey] ?? '');
  if (message !== 'request') return message;
  const ms = typeof log.ms === 'number' ? `${log.ms.toFixed(1)} ms` : '';
  // the access line's service is the AI service called (it shadows the base field of that name)
  const called = log.service === 'aisbreaker-gateway' ? undefined : log.service;
  const project = log.project === undefined ? undefined : `project ${String(log.project)}`;
  return [log.method, log.path, log.status, ms, called, project, log.completed === false ? '(left early)' : ''].filter((part) => part !== undefined && part !== '').join(' ');
};

/** pino-pretty, loaded only for a terminal: a production process writing JSON never pays for it. */
function humanReadable(): PrettyStream {
  const { PinoPretty } = createRequire(import.meta.url)('pino-pretty') as { PinoPretty: (options: PrettyOptions) => PrettyStream };
  return PinoPretty({
    sync: true,
    translateTime: 'SYS:HH:MM:ss.l',
    // the listening line's address is its url again; every line's service is this gateway
    ignore: ['pid', 'hostname', 'service', 'address', ...ACCESS_FIELDS].join(','),
    messageFormat: accessLineFormat,
  });
}

import { z } from 'zod/v4';
import { mintRequestSchema } from './token/mint-request.js';
import { chatCompletionsSchema } from './routes/openai.js';
import { forwardedSchema } from './routes/forwarded.js';
import { processBodySchema } from './routes/process.js';
import { PRODUCT_NAME, PRODUCT_VERSION } from './version.js';

/**
 * The OpenAPI 3.1 description of the HTTP surface. Request bodies are converted from the very
 * zod schemas that validate them, so the document cannot drift from what the server accepts.
 */

type Json = Record<string, unknown>;

function schemaOf(schema: z.ZodType): Json {
  const { $schema: _dialect, ...rest } = z.toJSONSchema(schema, { io: 'input', unrepresentable: 'any' }) as Json;
  return rest;
}

const errorEnvelope: Json = {
  type: 'object',
  required: ['success', 'error'],
  properties: {
    success: { const: false },
    error: {
      type: 'object',
      required: ['code', 'message', 'type', 'statusCode', 'statusText'],
      properties: {
        code: { type: 'string', examples: ['INVALID_REQUEST', 'RATE_LIMITED'] },
        message: { type: 'string' },
        type: { type: 'string', examples: ['invalid_request_error'] },
        statusCode: { type: 'integer', description: 'the HTTP status, also in an event stream (AIsBreaker clients read it)', examples: [401] },
        statusText: { type: 'string', examples: ['Unauthorized'] },
        details: { type: 'object', description: 'e.g. the field (400) or scope, window and limit (429)' },
      },
    },
  },
};

const errors = (...statuses: number[]): Json =>
  Object.fromEntries(statuses.map((s) => [String(s), { description: 'error envelope', content: { 'application/json': { schema: { $ref: '#/components/schemas/Error' } } } }]));

const json = (schema: Json, description = 'OK'): Json => ({ description, content: { 'application/json': { schema } } });
const jsonBody = (schema: Json): Json => ({ required: true, content: { 'application/json': { schema } } });
const formBody = (properties: Json): Json => ({
  required: true,
  content: {
    'application/x-www-form-urlencoded': { schema: { type: 'object', properties } },
    'application/json': { schema: { type: 'object', properties } },
  },
});
const credential = [{ bearer: [] }, { apiKey: [] }, { xApiKey: [] }];
const tokenOnly = [{ bearer: [] }];

export interface Operation {
  summary: string;
  description?: string;
  security?: Json[];
  requestBody?: Json;
  parameters?: Json[];
  responses: Json;
}

export type PathOperations = Record<string, Record<string, Operation>>;

/** The whole document. */
export function openApiDocument(): Json {
  const paths: PathOperations = {
    '/api/v1/oauth/token': {
      post: {
        summary: 'Mint a token, or derive a narrower child of the bearer token',
        description:
          'Quotas, service secrets, host binding and expiry are encrypted into one `aisbreaker_` token. With an `aisbreaker_` token as bearer, a child token with no more than its parent is returned (serviceSecrets entries may omit authSecret). With AISBREAKER_ADMIN_KEY set, minting a new token needs the admin key as bearer or clientSecret.',
        security: [{}, { bearer: [] }],
        requestBody: jsonBody(schemaOf(mintRequestSchema)),
        responses: {
          '200': json({
            type: 'object',
            required: ['access_token', 'token_type', 'expires_in'],
            properties: { access_token: { type: 'string', pattern: '^aisbreaker_' }, token_type: { const: 'Bearer' }, expires_in: { type: 'integer' } },
          }),
          ...errors(400, 401, 403, 413, 429),
        },
      },
    },
    '/api/v1/oauth/revoke': {
      post: {
        summary: 'Revoke a token (RFC 7009)',
        description: 'The holder presents the token; with the admin key as bearer any token or jti. Revoking a token revokes its derived tokens.',
        security: [{}, { bearer: [] }],
        requestBody: formBody({ token: { type: 'string' }, jti: { type: 'string', description: 'admin key required' } }),
        responses: { '200': json({ type: 'object', properties: { revoked: { type: 'boolean' }, jti: { type: 'string' } } }), ...errors(400, 403) },
      },
    },
    '/api/v1/oauth/introspect': {
      post: {
        summary: 'Introspect a token (RFC 7662), for operators',
        security: [{ bearer: [] }],
        requestBody: formBody({ token: { type: 'string' } }),
        responses: { '200': json({ type: 'object', properties: { active: { type: 'boolean' } } }), ...errors(400, 403) },
      },
    },
    '/api/v1/oauth/tokeninfo': {
      get: {
        summary: "The bearer token's services, limits and usage for the calling client (never its secrets)",
        security: tokenOnly,
        responses: { '200': json({ type: 'object', properties: { active: { type: 'boolean' }, jti: { type: 'string' }, services: { type: 'array', items: { type: 'string' } } } }), ...errors(401, 403) },
      },
    },
    '/api/v1/process': {
      post: {
        summary: 'AIsBreaker API: call a service (also at /api/v1alpha1/process)',
        description:
          'JSON ResponseFinal, or with request.stream=true server-sent events: `progress` events, then one `final` (or `error`) event. `service.forward2ServiceProps` names the next hop of a chain (filters `aisbreaker:mirror`, `aisbreaker:nop`, `aisbreaker:logging`; `aisbreaker:network` with a `url` allowed by AISBREAKER_NETWORK_URLS).',
        security: credential,
        requestBody: jsonBody(schemaOf(processBodySchema)),
        responses: { '200': { description: 'ResponseFinal (application/json) or an event stream (text/event-stream)' }, ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) },
      },
    },
    '/v1/chat/completions': {
      post: {
        summary: 'OpenAI-compatible chat completions, for every service',
        description:
          '`model` is `<serviceId>/<engine>` (e.g. `chat:openai.com/gpt-4o-mini`, `chat:dummy`) or a bare model of the default service. Fields the gateway does not check pass on to the upstream untouched. With `stream: true`: server-sent `data:` chunks, then `data: [DONE]`; a failure after the first chunk arrives as a chunk carrying `error`.',
        security: credential,
        requestBody: jsonBody(schemaOf(chatCompletionsSchema)),
        responses: { '200': { description: 'chat.completion (application/json) or chat.completion.chunk events (text/event-stream)' }, ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) },
      },
    },
    '/v1/messages': {
      post: {
        summary: 'Anthropic Messages, for every service',
        description:
          'A bare `model` goes to the service whose `models` lists it, else to `defaults.messagesService` (`chat:anthropic.com`). An anthropic service gets the request untouched with `anthropic-version` and `anthropic-beta`; other services get it translated to a chat completion (text, system, images, tools, tool results) and answer a Message. With `stream: true`: Anthropic\'s events (`message_start` ... `message_stop`). Errors in Anthropic\'s shape `{"type":"error","error":{"type","message","code","details"}}`; `anthropic-ratelimit-*` headers beside ours. Any query string (`?beta=true`) is ignored.',
        security: credential,
        requestBody: jsonBody(schemaOf(forwardedSchema)),
        responses: { '200': { description: 'message (application/json) or Anthropic events (text/event-stream)' }, ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) },
      },
    },
    '/v1/messages/count_tokens': {
      post: { summary: "Anthropic token counting (anthropic services only); uses none of an LLM-token limit", security: credential, requestBody: jsonBody(schemaOf(forwardedSchema)), responses: { '200': json({ type: 'object', properties: { input_tokens: { type: 'integer' } } }), ...errors(400, 401, 403, 404, 429, 502, 503, 504) } },
    },
    '/v1/responses': {
      post: {
        summary: 'OpenAI Responses (openai services only), passed through',
        description: 'With `stream: true`: the `response.*` events, ending with `response.completed`; its usage counts against LLM-token limits. Other kinds of service: 400 naming what they answer.',
        security: credential,
        requestBody: jsonBody(schemaOf(forwardedSchema)),
        responses: { '200': { description: 'response (application/json) or response.* events (text/event-stream)' }, ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) },
      },
    },
    '/v1/responses/{id}': {
      get: { summary: 'A stored response, from `defaults.service`', security: credential, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,256}$' } }], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404, 429, 502, 503, 504) } },
      delete: { summary: 'Deletes a stored response, at `defaults.service`', security: credential, parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,256}$' } }], responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404, 429, 502, 503, 504) } },
    },
    '/v1/embeddings': {
      post: { summary: 'OpenAI embeddings (openai services only), passed through; `usage` counts', security: credential, requestBody: jsonBody(schemaOf(forwardedSchema)), responses: { '200': json({ type: 'object' }), ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) } },
    },
    '/v1/completions': {
      post: { summary: 'OpenAI legacy text completions (openai services only), passed through, streamed like chat completions', security: credential, requestBody: jsonBody(schemaOf(forwardedSchema)), responses: { '200': { description: 'text_completion (application/json) or chunks (text/event-stream)' }, ...errors(400, 401, 403, 404, 413, 429, 502, 503, 504) } },
    },
    '/v1/models': {
      get: {
        summary: 'The models this credential may use (OpenAI list shape)',
        security: credential,
        responses: { '200': json({ type: 'object', properties: { object: { const: 'list' }, data: { type: 'array', items: { type: 'object', properties: { id: { type: 'string' }, object: { const: 'model' } } } } } }), ...errors(401) },
      },
    },
    '/v1/deployments/{model}/limits': {
      get: {
        summary: 'Usage and limits per window for a model (AI DIAL shape)',
        security: credential,
        parameters: [{ name: 'model', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '200': json({ type: 'object', additionalProperties: { type: 'object', properties: { total: { type: 'integer' }, used: { type: 'integer' } } } }), ...errors(401, 403) },
      },
    },
    '/api/v1/ping': { get: { summary: 'Liveness in AIsBreaker form', security: [], responses: { '200': json({ type: 'object', properties: { message: { const: 'api-pong' } } }) } } },
    '/api/v1/version': { get: { summary: 'Product name and version', security: [], responses: { '200': json({ type: 'object' }) } } },
    '/healthz': { get: { summary: 'The process is up', security: [], responses: { '200': json({ type: 'object' }) } } },
    '/readyz': { get: { summary: 'Config loaded and quota store usable', security: [], responses: { '200': json({ type: 'object' }), '503': json({ type: 'object' }, 'not ready') } } },
    '/metrics': { get: { summary: 'Prometheus metrics', security: [], responses: { '200': { description: 'text/plain exposition format' } } } },
  };
  return {
    openapi: '3.1.0',
    info: {
      title: PRODUCT_NAME,
      version: PRODUCT_VERSION,
      description: 'Self-hosted AI gateway for stateless, quota-carrying `aisbreaker_` tokens, wire-compatible with the AIsBreaker server.',
    },
    components: {
      securitySchemes: {
        bearer: { type: 'http', scheme: 'bearer', description: 'an aisbreaker_ token, an operator API key, or (admin endpoints) the admin key' },
        apiKey: { type: 'apiKey', in: 'header', name: 'Api-Key' },
        xApiKey: { type: 'apiKey', in: 'header', name: 'x-api-key', description: 'as the Anthropic SDKs send it' },
      },
      schemas: { Error: errorEnvelope },
    },
    paths,
  };
}

/**
 * The AIsBreaker API shapes (requests, outputs, events) and the contract every service
 * connector fulfils. Field names follow aisbreaker-api-js so its clients work unchanged.
 */

export interface InputText {
  role: string;
  content: string;
}

export interface Input {
  text?: InputText;
}

export interface ProcessRequest {
  inputs: Input[];
  conversationState?: string;
  stream?: boolean;
}

export interface OutputText {
  index: number;
  role: string;
  content: string;
  isDelta?: boolean;
  isProcessing?: boolean;
}

export interface Output {
  text?: OutputText;
}

export interface ResponseEvent {
  outputs: Output[];
}

export interface Usage {
  engine: { serviceId: string };
  totalMilliseconds: number;
  /** the upstream's LLM tokens (prompt + completion), when it reports them */
  totalTokens?: number;
  serviceHints?: string[];
}

export interface ResponseFinal {
  outputs: Output[];
  conversationState?: string;
  usage: Usage;
}

/**
 * A request's `service`: the serviceId, for aisbreaker:network the URL of the next gateway, and for
 * filters and aisbreaker:network the next hop of the chain (AIsBreaker's `forward2ServiceProps`).
 */
export interface ServiceProps {
  serviceId: string;
  url?: string | undefined;
  forward2ServiceProps?: ServiceProps | undefined;
}

export interface ServiceCall {
  /** the full requested serviceId, e.g. "chat:dummy" or "chat:openai.com/gpt-4o-mini" */
  serviceId: string;
  /** the service's own name of the model to use: what follows the registered serviceId, or its default */
  engine: string;
  /** aisbreaker:network only: the service props the remote gateway gets (the rest of the chain) */
  forward?: ServiceProps;
  /** the secret the caller's token carries for this service, if any */
  secret: string | undefined;
  /** `secret` is the operator's own key (an operator API key is calling): an upstream with a key of its own uses that */
  byOperatorKey?: boolean;
  signal: AbortSignal;
  /** set when the caller asked for streaming: receives each partial output; resolves when the caller can take more */
  onProgress?: (event: ResponseEvent) => Promise<void>;
  /** receives the upstream's LLM-token usage once known (quotas, metrics) */
  onUsage?: (usage: LlmUsage) => void;
  /** receives the model the upstream says answered, when it names one (tracing) */
  onResponseModel?: (model: string) => void;
  /** headers the upstream request carries for tracing (W3C traceparent), when tracing is on */
  traceHeaders?: Record<string, string>;
}

/** An OpenAI chat completions request body: checked where it matters, the rest passed on as is. */
export interface ChatCompletionsBody {
  model: string;
  messages: unknown[];
  stream?: boolean;
  stream_options?: { include_usage?: boolean } & Record<string, unknown>;
  [field: string]: unknown;
}

export interface ChatCompletionsRequest {
  /** the body to send, its `model` already the service's own engine name */
  body: ChatCompletionsBody;
  /** the request bytes exactly as received, set only when they say the same as `body`: sent without re-serializing */
  raw?: Buffer;
}

/** A chat completion: one JSON body, or the chunks of an event stream (without `[DONE]`). */
export type ChatCompletionsResult = ApiResult;

/**
 * The vendors' other APIs a service may forward as they are: Anthropic's Messages (and its token
 * counting), OpenAI's Responses (and its stored responses), embeddings and legacy completions.
 */
export type ForwardedApi = 'messages' | 'messages.count_tokens' | 'responses' | 'responses.get' | 'responses.delete' | 'embeddings' | 'completions';

export interface ApiRequest {
  /** the JSON body to send, its `model` already the service's own name; none for GET and DELETE */
  body?: { [field: string]: unknown };
  /** the request bytes exactly as received, set only when they say the same as `body` */
  raw?: Buffer;
  /** the resource the call names (a stored response's id), checked to be a plain name */
  id?: string;
  /** the API's own headers passed through (anthropic-version, anthropic-beta) */
  headers?: Record<string, string>;
}

/** One event of a stream as the upstream framed it: its `event:` name, if any, and its data. */
export interface StreamEvent {
  event?: string;
  data: string;
}

export type ApiResult = { kind: 'json'; body: Buffer } | { kind: 'stream'; events: AsyncIterable<StreamEvent> };

/** OpenAI's `usage` numbers, the base of LLM-token quotas and metrics (and of tracing's input/output counts). */
export interface LlmUsage {
  total_tokens: number;
  prompt_tokens?: number;
  completion_tokens?: number;
}

export interface AisService {
  /** false for services answered without any secret (chat:dummy, chat:echo) */
  readonly needsSecret: boolean;
  /** the engine used when a request names only the serviceId; undefined: the request must name one */
  readonly defaultEngine: string | undefined;
  /** the AIsBreaker API: `POST /api/v1/process` */
  process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal>;
  /** the OpenAI API: `POST /v1/chat/completions` */
  chatCompletions(request: ChatCompletionsRequest, call: ServiceCall): Promise<ChatCompletionsResult>;
  /** the APIs it forwards as they are (see `forward`); the others are translated or refused */
  readonly forwards: readonly ForwardedApi[];
  /** one of `forwards`, passed through to the upstream with the call's secret (services without an upstream have none) */
  forward?(api: ForwardedApi, request: ApiRequest, call: ServiceCall): Promise<ApiResult>;
  /** engines worth listing in `GET /v1/models` (the serviceId alone means its default engine) */
  models(): string[];
  /** the engines to list for a caller with this secret, where the upstream can say more than `models()` */
  listModels?(secret: string): Promise<string[]>;
  /** releases connections once in-flight calls are done (config reload, shutdown) */
  close(): Promise<void>;
}

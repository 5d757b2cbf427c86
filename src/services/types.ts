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
  serviceHints?: string[];
}

export interface ResponseFinal {
  outputs: Output[];
  conversationState?: string;
  usage: Usage;
}

export interface ServiceCall {
  /** the full requested serviceId, e.g. "chat:dummy" or "chat:openai.com/gpt-4o-mini" */
  serviceId: string;
  /** the secret the caller's token carries for this service, if any */
  secret: string | undefined;
  signal: AbortSignal;
  /** set when the caller asked for streaming: receives each partial output */
  onProgress?: (event: ResponseEvent) => void;
}

export interface AisService {
  process(request: ProcessRequest, call: ServiceCall): Promise<ResponseFinal>;
}

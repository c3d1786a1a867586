// Errors as the OpenAI API shapes them: `{"error":{"message","type","param","code"}}` with an HTTP
// status. Every failure of a request becomes one of these, so clients (the openai SDK included)
// read the reason and the status the same way as from OpenAI or vLLM.
import { EngineError, InputError, ModelError, OvisError, TooLargeInputError, UsageError } from '../errors.js';

export type ErrorType = 'invalid_request_error' | 'authentication_error' | 'not_found_error' | 'rate_limit_error' | 'server_error' | 'service_unavailable';

export interface OpenAiErrorBody {
  error: { message: string; type: ErrorType; param: string | null; code: string | null };
}

export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: ErrorType,
    readonly param: string | null = null,
    readonly code: string | null = null,
  ) {
    super(message);
  }

  body(): OpenAiErrorBody {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

export const badRequest = (message: string, param: string | null = null, code: string | null = null) => new HttpError(400, message, 'invalid_request_error', param, code);
export const tooLarge = (message: string, param: string | null = null) => new HttpError(413, message, 'invalid_request_error', param, 'payload_too_large');
/** The client closed the connection first (nginx's 499): nobody reads this, but /metrics counts it. */
export const clientClosed = () => new HttpError(499, 'the client closed the connection before the answer', 'invalid_request_error', null, 'client_closed');
export const unavailable = (message: string) => new HttpError(503, message, 'service_unavailable', null, 'engine_unavailable');

/**
 * What a failure inside a request means to the client: bad input (the prompt, an image, the
 * context window) is the client's 400; a dead or restarting engine is 503 (try again); anything
 * else is the server's 500.
 */
export function httpErrorOf(e: unknown): HttpError {
  if (e instanceof HttpError) return e;
  if (e instanceof TooLargeInputError) return tooLarge(e.message, 'messages');
  if (e instanceof InputError || e instanceof UsageError) return badRequest(e.message, 'messages');
  if (e instanceof EngineError) {
    if (e.code === 'engine' || e.code === 'device_error') return unavailable(`${e.message.split('\n')[0]}; the server restarts the engine: try again shortly`);
    return new HttpError(500, e.message, 'server_error', null, e.code);
  }
  if (e instanceof ModelError || e instanceof OvisError) return new HttpError(500, e.message, 'server_error', null, e.code);
  return new HttpError(500, `internal error: ${(e as Error)?.message ?? String(e)}`, 'server_error', null, 'internal');
}

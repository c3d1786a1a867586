// What went wrong with a request to an --endpoint, as an OvisError that names the endpoint and says
// what to do. Exit codes (src/errors.ts): unreachable or timed out 6, key refused 7, model unknown 4,
// busy 8, the server failed 5, the request refused 3.
import { APIConnectionError, APIConnectionTimeoutError, APIError } from 'openai';
import { AuthError, BusyError, EngineError, InputError, ModelError, NetworkError, OvisError } from '../errors.js';
import type { RemoteSettings } from './endpoint.js';
import { TruncatedStreamError } from './stream-reader.js';

/** The innermost `code` of an error's cause chain (ECONNREFUSED, ENOTFOUND, …). */
function causeCode(e: unknown): string | undefined {
  let code: string | undefined;
  for (let c = e as { cause?: unknown; code?: unknown } | undefined, depth = 0; c && depth < 8; c = c.cause as typeof c, depth++) {
    if (typeof c.code === 'string') code = c.code;
  }
  return code;
}

/** The server's own message from an OpenAI-shaped error body ({error: {message}} or {message}). */
function serverMessage(e: APIError): string {
  // The SDK keeps the body's `error` member when there is one (vLLM's 401: {"error": "Unauthorized"}).
  if (typeof e.error === 'string' && e.error) return e.error;
  const body = e.error as { message?: unknown; error?: { message?: unknown } } | undefined;
  const m = body?.message ?? body?.error?.message;
  return typeof m === 'string' && m ? m : e.message.replace(/^\d+\s*/, '');
}

const NETWORK_CODES = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ECONNRESET', 'UND_ERR_SOCKET', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'ENETUNREACH']);

export function remoteError(e: unknown, s: RemoteSettings, model?: string): OvisError {
  if (e instanceof OvisError) return e;
  const at = s.endpoint;
  if (e instanceof TruncatedStreamError) return new NetworkError(`${at} stopped sending before the answer ended (no finish_reason): the server or a proxy cut the connection; try again`, { cause: e });
  if (e instanceof APIConnectionTimeoutError) {
    return new NetworkError(`${at} did not answer within ${s.timeoutMs / 1000} s: check that the server is up and not overloaded, or wait longer with OVIS_ENDPOINT_TIMEOUT=SECONDS`, { cause: e });
  }
  const code = causeCode(e);
  // A cut while the answer streams is not an APIConnectionError: undici's "terminated" with a socket cause.
  if (e instanceof APIConnectionError || (code !== undefined && NETWORK_CODES.has(code))) {
    const host = new URL(at).host;
    if (code === 'ECONNREFUSED') return new NetworkError(`cannot connect to ${at}: connection refused (is the server running, and listening on ${host}?)`, { cause: e });
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return new NetworkError(`cannot connect to ${at}: the host name ${new URL(at).hostname} does not resolve (check the name in --endpoint)`, { cause: e });
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return new NetworkError(`${at} closed the connection (${code}): the server stopped or a proxy cut it; try again`, { cause: e });
    return new NetworkError(`cannot connect to ${at}: ${code ?? (e as Error).message}`, { cause: e });
  }
  if (e instanceof APIError && typeof e.status === 'number') {
    const status = e.status;
    const said = `${status}: ${serverMessage(e)}`;
    if (status === 401 || status === 403) {
      const what = s.apiKey === undefined ? 'needs an API key: give it with --api-key KEY or OVIS_API_KEY' : 'refused the API key: check --api-key or OVIS_API_KEY';
      return new AuthError(`${at} ${what} (${said})`, { cause: e });
    }
    if (status === 404) {
      return new ModelError(`${at} answered 404 (${serverMessage(e)}): ${model ? `the model ${JSON.stringify(model)} may not be served there (see GET ${at}/models; choose with --remote-model), or ` : ''}the URL is not the API's base, which usually ends in /v1`, { cause: e });
    }
    if (status === 429) return new BusyError(`${at} is busy (${said}): try again later, or send fewer requests at once`, { cause: e });
    if (status >= 500) return new EngineError(`${at} failed (${said}): the server's log says why; try again`, 'server_error', { cause: e });
    if (status >= 400) return new InputError(`${at} refused the request (${said})`, { cause: e });
  }
  const msg = e instanceof Error ? e.message : String(e);
  return new EngineError(`${at}: ${msg}`, 'server_error', { cause: e });
}

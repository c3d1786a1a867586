// --endpoint, --api-key, --remote-model: where the OpenAI-compatible server is and how to talk to it.
import { UsageError } from '../errors.js';

export interface EndpointFlags {
  endpoint?: string;
  apiKey?: string;
  remoteModel?: string;
  /** Refused with --endpoint (an adapter is merged into local weights only). */
  lora?: string;
  precision?: string;
  weights?: string;
}

export interface RemoteSettings {
  /** The API's base URL, e.g. http://host:8000/v1 (no trailing slash). */
  endpoint: string;
  apiKey?: string;
  /** How long to wait for the response to begin (its headers), in ms. */
  timeoutMs: number;
}

const DEFAULT_TIMEOUT_S = 600;

/** The base URL: http(s) only; a bare host gets /v1, where vLLM and `ovis serve` serve the API. */
export function endpointURL(given: string): string {
  let u: URL;
  try {
    u = new URL(given);
  } catch {
    throw new UsageError(`--endpoint must be a URL such as http://host:8000/v1, got ${JSON.stringify(given)}`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--endpoint must be an http:// or https:// URL, got ${JSON.stringify(given)}`);
  if (u.pathname === '/' || u.pathname === '') u.pathname = '/v1';
  u.search = '';
  u.hash = '';
  return u.toString().replace(/\/+$/, '');
}

/** The settings from the flags and the environment (OVIS_API_KEY, OVIS_ENDPOINT_TIMEOUT in seconds). */
export function remoteSettings(flags: EndpointFlags, env: NodeJS.ProcessEnv = process.env): RemoteSettings {
  const endpoint = endpointURL(flags.endpoint!);
  const timeout = env.OVIS_ENDPOINT_TIMEOUT;
  const seconds = timeout === undefined || timeout === '' ? DEFAULT_TIMEOUT_S : Number(timeout);
  if (!Number.isFinite(seconds) || seconds <= 0) throw new UsageError(`OVIS_ENDPOINT_TIMEOUT must be a number of seconds above 0, got ${JSON.stringify(timeout)}`);
  const apiKey = flags.apiKey ?? (env.OVIS_API_KEY || undefined);
  return { endpoint, apiKey, timeoutMs: seconds * 1000 };
}

/** --api-key and --remote-model mean nothing without --endpoint. */
export function checkEndpointFlags(flags: EndpointFlags): void {
  if (flags.endpoint !== undefined) {
    if (flags.lora !== undefined) throw new UsageError('--lora merges an adapter into a local model: the server given by --endpoint serves its own weights (start it with its own adapter); drop --lora or --endpoint');
    if (flags.precision !== undefined) throw new UsageError('--precision sets the local engine\'s CPU arithmetic: the server given by --endpoint has its own (start it with ovis serve --precision); drop --precision or --endpoint');
    if (flags.weights !== undefined) throw new UsageError('--weights sets how a local model is held: the server given by --endpoint serves its own weights (start it with --weights); drop --weights or --endpoint');
    return;
  }
  if (flags.remoteModel !== undefined) throw new UsageError('--remote-model names a model on a server: give the server with --endpoint URL');
  if (flags.apiKey !== undefined) throw new UsageError('--api-key is for a server: give the server with --endpoint URL');
}

// The official OpenAI client, set up for one endpoint: only our key (none of the OPENAI_* variables),
// no automatic retries (a failure is reported at once, with what to do), our timeout.
import OpenAI from 'openai';
import type { RemoteSettings } from './endpoint.js';

export function openaiClient(s: RemoteSettings): OpenAI {
  return new OpenAI({
    baseURL: s.endpoint,
    // The SDK insists on a key; without one no Authorization header is sent (defaultHeaders: null).
    apiKey: s.apiKey ?? 'no-key',
    organization: null,
    project: null,
    maxRetries: 0,
    timeout: s.timeoutMs,
    defaultHeaders: s.apiKey === undefined ? { Authorization: null } : {},
  });
}

// Which model on the server answers: --remote-model; else the --model name when the server lists
// it; else the server's only model (GET /v1/models). Listing first also checks, before any media is
// prepared, that the endpoint answers and takes the key.
import type OpenAI from 'openai';
import { APIError } from 'openai';
import { ModelError, UsageError } from '../errors.js';
import type { RemoteSettings } from './endpoint.js';
import { remoteError } from './errors.js';

export interface RemoteModel {
  id: string;
  /** vLLM's max_model_len (context in positions), when the server says. */
  maxModelLen?: number;
}

export async function pickRemoteModel(client: OpenAI, s: RemoteSettings, flags: { remoteModel?: string; model?: string }): Promise<RemoteModel> {
  let listed: Array<{ id: string; max_model_len?: number }>;
  try {
    const page = await client.models.list();
    listed = page.data as typeof listed;
  } catch (e) {
    // A server without the listing can still answer a model named outright.
    const named = flags.remoteModel ?? flags.model;
    if (e instanceof APIError && e.status === 404 && named !== undefined) return { id: named };
    throw remoteError(e, s);
  }
  const names = listed.map((m) => m.id);
  const found = (id: string) => listed.find((m) => m.id === id);
  const serves = names.length > 0 ? `it serves ${names.join(', ')}` : 'it lists no models';
  const pick = (m: { id: string; max_model_len?: number }): RemoteModel => ({ id: m.id, ...(typeof m.max_model_len === 'number' ? { maxModelLen: m.max_model_len } : {}) });
  if (flags.remoteModel !== undefined) {
    const m = found(flags.remoteModel);
    if (!m) throw new ModelError(`${s.endpoint} has no model ${JSON.stringify(flags.remoteModel)}: ${serves}`);
    return pick(m);
  }
  if (flags.model !== undefined && found(flags.model)) return pick(found(flags.model)!);
  if (listed.length === 1) return pick(listed[0]);
  if (listed.length === 0) throw new ModelError(`${s.endpoint} lists no models (GET ${s.endpoint}/models): name one with --remote-model NAME`);
  throw new UsageError(`${s.endpoint} serves ${listed.length} models (${names.join(', ')}): choose one with --remote-model NAME`);
}

// The parameters of a POST /v1/chat/completions body, checked: each bad value is a 400 naming the
// field and the value, as OpenAI and vLLM answer. Fields this server does not implement are refused
// when they would change the answer (n > 1, tools, penalties) rather than silently ignored.
import { badRequest } from './http-error.js';

/** The answer's length when the request sets no max_tokens (as `ovis ask -n`'s default). */
export const DEFAULT_MAX_TOKENS = 1024;
const MAX_STOP_STRINGS = 4;

export interface CompletionParams {
  model?: string;
  messages: unknown[];
  stream: boolean;
  /** stream_options.include_usage: a last chunk with `usage` and no choices. */
  includeUsage: boolean;
  maxTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  stop: string[];
  logprobs: boolean;
  topLogprobs: number;
  /** vLLM's return_tokens_as_token_ids: logprobs name tokens "token_id:ID". */
  tokensAsIds: boolean;
  enableThinking: boolean;
  thinkingBudget?: number;
  /** mm_processor_kwargs: the resized image area bounds, pixels. */
  minPixels?: number;
  maxPixels?: number;
}

type Body = Record<string, unknown>;

function number(body: Body, key: string, min: number, max: number, opts: { integer?: boolean; minExclusive?: boolean; label?: string } = {}): number | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  const name = opts.label ?? key;
  const low = opts.minExclusive ? (v as number) > min : (v as number) >= min;
  if (typeof v !== 'number' || !Number.isFinite(v) || (opts.integer && !Number.isInteger(v)) || !low || v > max) {
    const range = opts.integer ? `an integer from ${min} to ${max}` : `a number in ${opts.minExclusive ? '(' : '['}${min}, ${max}]`;
    throw badRequest(`${name} must be ${range}, got ${JSON.stringify(v)}`, name);
  }
  return v;
}

function boolean(body: Body, key: string, label = key): boolean | undefined {
  const v = body[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean') throw badRequest(`${label} must be true or false, got ${JSON.stringify(v)}`, label);
  return v;
}

function object(body: Body, key: string): Body {
  const v = body[key];
  if (v === undefined || v === null) return {};
  if (typeof v !== 'object' || Array.isArray(v)) throw badRequest(`${key} must be an object, got ${JSON.stringify(v)}`, key);
  return v as Body;
}

function stops(v: unknown): string[] {
  if (v === undefined || v === null) return [];
  const list = typeof v === 'string' ? [v] : v;
  if (!Array.isArray(list) || list.some((s) => typeof s !== 'string' || s === '') || list.length > MAX_STOP_STRINGS) {
    throw badRequest(`stop must be a non-empty string or a list of at most ${MAX_STOP_STRINGS} of them, got ${JSON.stringify(v)}`, 'stop');
  }
  return list as string[];
}

function refuseUnsupported(body: Body): void {
  const n = body.n;
  if (n !== undefined && n !== null && n !== 1) throw badRequest(`n must be 1: this server returns one choice per request, got ${JSON.stringify(n)}; send the request several times (with different seeds) for more`, 'n');
  for (const key of ['presence_penalty', 'frequency_penalty']) {
    if (body[key] !== undefined && body[key] !== null && body[key] !== 0) throw badRequest(`${key} is not supported (only 0); use repetition_penalty`, key);
  }
  if (Array.isArray(body.tools) && body.tools.length > 0) throw badRequest('tools are not supported by this server', 'tools');
  const format = body.response_format as Body | undefined;
  if (format && format.type !== undefined && format.type !== 'text') throw badRequest(`response_format ${JSON.stringify(format.type)} is not supported (only "text")`, 'response_format');
}

export function parseCompletionParams(raw: unknown): CompletionParams {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) throw badRequest('the request body must be a JSON object', null);
  const body = raw as Body;
  refuseUnsupported(body);
  if (!Array.isArray(body.messages) || body.messages.length === 0) throw badRequest('messages must be a non-empty list of {role, content}', 'messages');
  if (body.model !== undefined && typeof body.model !== 'string') throw badRequest(`model must be a string, got ${JSON.stringify(body.model)}`, 'model');
  const maxTokens = number(body, 'max_completion_tokens', 1, 1_000_000, { integer: true }) ?? number(body, 'max_tokens', 1, 1_000_000, { integer: true });
  const logprobs = boolean(body, 'logprobs') ?? false;
  const topLogprobs = number(body, 'top_logprobs', 0, 20, { integer: true }) ?? 0;
  if (topLogprobs > 0 && !logprobs) throw badRequest('top_logprobs needs logprobs: true', 'top_logprobs');
  const templateKwargs = object(body, 'chat_template_kwargs');
  const mm = object(body, 'mm_processor_kwargs');
  const thinkingBudget = number(body, 'thinking_budget', 1, 1_000_000, { integer: true });
  const topK = number(body, 'top_k', -1, 1_000_000, { integer: true });
  const streamOptions = object(body, 'stream_options');
  const minPixels = number(mm, 'min_pixels', 1, Number.MAX_SAFE_INTEGER, { integer: true, label: 'mm_processor_kwargs.min_pixels' });
  const maxPixels = number(mm, 'max_pixels', 1, Number.MAX_SAFE_INTEGER, { integer: true, label: 'mm_processor_kwargs.max_pixels' });
  if (minPixels !== undefined && maxPixels !== undefined && minPixels > maxPixels) {
    throw badRequest(`mm_processor_kwargs.min_pixels (${minPixels}) is above max_pixels (${maxPixels})`, 'mm_processor_kwargs.min_pixels');
  }
  return {
    model: body.model as string | undefined,
    messages: body.messages,
    stream: boolean(body, 'stream') ?? false,
    includeUsage: boolean(streamOptions, 'include_usage', 'stream_options.include_usage') ?? false,
    maxTokens: maxTokens ?? DEFAULT_MAX_TOKENS,
    temperature: number(body, 'temperature', 0, 100),
    topP: number(body, 'top_p', 0, 1, { minExclusive: true }),
    // vLLM's -1 (and 0) mean no top-k; the engine's 0 does.
    topK: topK === undefined ? undefined : Math.max(0, topK),
    repetitionPenalty: number(body, 'repetition_penalty', 0.01, 100),
    seed: number(body, 'seed', 0, Number.MAX_SAFE_INTEGER, { integer: true }),
    stop: stops(body.stop),
    logprobs,
    topLogprobs,
    tokensAsIds: boolean(body, 'return_tokens_as_token_ids') ?? false,
    // On unless turned off, as vLLM serves Ovis2.5: its chat template renders the empty think block
    // only when enable_thinking is defined and false (model-spec §3.2), so clients written for vLLM
    // get the same prompt here. (`ovis ask` follows HF's default, off.) A thinking budget implies
    // thinking, as `ovis ask --think-budget` does.
    enableThinking: (boolean(templateKwargs, 'enable_thinking', 'chat_template_kwargs.enable_thinking') ?? true) || thinkingBudget !== undefined,
    thinkingBudget,
    minPixels,
    maxPixels,
  };
}

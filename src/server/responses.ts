// The JSON shapes of chat completions, as OpenAI and vLLM send them: one `chat.completion` object,
// or `chat.completion.chunk` objects for a stream. `reasoning_content` is vLLM's field for thinking.
import { randomBytes } from 'node:crypto';
import type { CompletionResult, Delta, Usage } from './completion.js';

export interface Identity {
  id: string;
  created: number;
  model: string;
}

export function newIdentity(model: string): Identity {
  return { id: `chatcmpl-${randomBytes(12).toString('hex')}`, created: Math.floor(Date.now() / 1000), model };
}

export function completionBody(who: Identity, r: CompletionResult, withLogprobs: boolean) {
  return {
    id: who.id,
    object: 'chat.completion',
    created: who.created,
    model: who.model,
    choices: [{
      index: 0,
      message: { role: 'assistant', content: r.content, ...(r.reasoning !== undefined ? { reasoning_content: r.reasoning } : {}) },
      logprobs: withLogprobs ? { content: r.logprobs } : null,
      finish_reason: r.finishReason,
    }],
    usage: r.usage,
  };
}

function chunk(who: Identity, choices: unknown[], usage?: Usage | null) {
  return { id: who.id, object: 'chat.completion.chunk', created: who.created, model: who.model, choices, ...(usage !== undefined ? { usage } : {}) };
}

/** The first chunk: the role, as OpenAI sends it before any text. */
export function roleChunk(who: Identity, includeUsage: boolean) {
  return chunk(who, [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], includeUsage ? null : undefined);
}

export function deltaChunk(who: Identity, d: Delta, includeUsage: boolean) {
  const delta = { ...(d.reasoning !== undefined ? { reasoning_content: d.reasoning } : {}), ...(d.content !== undefined ? { content: d.content } : {}) };
  return chunk(who, [{ index: 0, delta, logprobs: d.logprobs ? { content: d.logprobs } : null, finish_reason: null }], includeUsage ? null : undefined);
}

export function finishChunk(who: Identity, finishReason: string, includeUsage: boolean) {
  return chunk(who, [{ index: 0, delta: {}, logprobs: null, finish_reason: finishReason }], includeUsage ? null : undefined);
}

/** With stream_options.include_usage: a last chunk with no choices and the usage. */
export function usageChunk(who: Identity, usage: Usage) {
  return chunk(who, [], usage);
}

// Reads a streamed chat completion (server-sent chunks, as vLLM sends them) into the token events
// and the done event of a local turn. Thinking arrives as `reasoning_content` (vLLM with a reasoning
// parser; newer vLLM calls it `reasoning`) or, from a server without one, inline in `content`
// between <think> and </think>: both become the thinking channel. A remote turn has no token ids
// (id -1) and one event per chunk (usually one token); the timings are measured here, from the
// request's start (prefill and vision are not known apart: 0).
import type { DoneEvent } from '../protocol/index.js';
import type { Channel, TokenOut, TurnHooks, TurnResult } from '../session/turn.js';

export interface StreamChunk {
  choices?: Array<{
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };
    finish_reason?: string | null;
    logprobs?: { content?: Array<{ token: string; logprob: number; top_logprobs?: Array<{ token: string; logprob: number }> }> | null } | null;
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number; prompt_tokens_details?: { cached_tokens?: number } | null } | null;
}

/** The stream ended without a finish_reason: the connection was cut mid-answer. */
export class TruncatedStreamError extends Error {
  constructor() {
    super('the answer stopped without a finish_reason');
  }
}

const OPEN = '<think>';
const CLOSE = '</think>';

/** Splits `content` text at think tags into channel segments; a tag cut across chunks is held back. */
export class ThinkTagSplitter {
  private held = '';
  constructor(public channel: Channel) {}

  push(text: string): Array<{ text: string; channel: Channel }> {
    let rest = this.held + text;
    this.held = '';
    const out: Array<{ text: string; channel: Channel }> = [];
    for (;;) {
      const tag = this.channel === 'thinking' ? CLOSE : OPEN;
      const at = rest.indexOf(tag);
      if (at < 0) break;
      if (at > 0) out.push({ text: rest.slice(0, at), channel: this.channel });
      this.channel = this.channel === 'thinking' ? 'answer' : 'thinking';
      rest = rest.slice(at + tag.length);
    }
    // Hold a tail that could be the start of the next tag.
    const tag = this.channel === 'thinking' ? CLOSE : OPEN;
    for (let n = Math.min(tag.length - 1, rest.length); n > 0; n--) {
      if (tag.startsWith(rest.slice(-n))) {
        this.held = rest.slice(-n);
        rest = rest.slice(0, -n);
        break;
      }
    }
    if (rest) out.push({ text: rest, channel: this.channel });
    return out;
  }

  flush(): string {
    const h = this.held;
    this.held = '';
    return h;
  }
}

export async function readStream(stream: AsyncIterable<StreamChunk>, hooks: TurnHooks, opts: { startedAt: number; aborted: () => boolean; topLogprobs?: number }): Promise<TurnResult> {
  // Ovis2.5's template opens the thinking itself only when the model writes <think>: start in the answer.
  const split = new ThinkTagSplitter('answer');
  let finish: DoneEvent['finish_reason'] | undefined;
  let usage: StreamChunk['usage'];
  let firstAt: number | undefined;
  let events = 0;
  const emit = (text: string, channel: Channel, lp?: NonNullable<NonNullable<StreamChunk['choices']>[number]['logprobs']>['content']) => {
    if (!text) return;
    firstAt ??= performance.now();
    events += 1;
    const t: TokenOut = { id: -1, text, channel, logprob: lp && lp.length > 0 ? lp.reduce((s, x) => s + x.logprob, 0) : Number.NaN };
    if ((opts.topLogprobs ?? 0) > 0 && lp && lp.length === 1 && lp[0].top_logprobs) t.top = lp[0].top_logprobs.map((x) => ({ id: -1, text: x.token, logprob: x.logprob }));
    hooks.onToken(t);
  };
  try {
    for await (const chunk of stream) {
      if (chunk.usage) usage = chunk.usage;
      const choice = chunk.choices?.[0];
      if (!choice) continue;
      const d = choice.delta ?? {};
      const lp = choice.logprobs?.content ?? undefined;
      const reasoning = d.reasoning_content ?? d.reasoning;
      if (reasoning) emit(reasoning, 'thinking', lp);
      if (d.content) for (const seg of split.push(d.content)) emit(seg.text, seg.channel, lp);
      if (choice.finish_reason) finish = choice.finish_reason === 'length' ? 'length' : 'stop';
    }
  } catch (e) {
    if (!opts.aborted()) throw e;
    finish = 'cancelled';
  }
  if (opts.aborted()) finish = 'cancelled';
  if (finish === undefined) throw new TruncatedStreamError();
  const tail = split.flush();
  const end = performance.now();
  const total = end - opts.startedAt;
  const first = firstAt === undefined ? 0 : firstAt - opts.startedAt;
  const cached = usage?.prompt_tokens_details?.cached_tokens ?? 0;
  const done: DoneEvent = {
    id: 0,
    finish_reason: finish,
    prompt_tokens: Math.max(0, (usage?.prompt_tokens ?? 0) - cached),
    cached_tokens: cached,
    completion_tokens: usage?.completion_tokens ?? events,
    timings: { vision_ms: 0, prefill_ms: 0, first_token_ms: first, decode_ms: firstAt === undefined ? 0 : end - firstAt, total_ms: total },
  };
  return { done, ids: [], cached: 0, tail, tailChannel: split.channel };
}

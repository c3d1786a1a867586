// One chat completion: media loaded, an engine slot taken (or 429), the prompt encoded with the
// model's chat template, a session chosen for prefix reuse, then the engine's tokens turned into
// answer and reasoning text (and log-probabilities) as they stream. The HTTP shapes are the
// caller's (responses.ts); this file knows tokens and text.
import { checkMediaMix } from '../cli/load-media.js';
import { detokenizerFor } from '../cli/detokenizer.js';
import { samplingFrom } from '../cli/sampling.js';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { Logger } from '../output/logger.js';
import type { PromptBuilder } from '../prompt/index.js';
import { runAnswer } from '../session/answer.js';
import { SessionCache } from '../session/session-cache.js';
import { THINK_END, THINK_START, type TokenOut } from '../session/turn.js';
import type { Admission } from './admission.js';
import { badRequest } from './http-error.js';
import type { Metrics } from './metrics.js';
import type { CompletionParams } from './request-params.js';
import { translateMessages } from './request-messages.js';
import { loadRequestMedium, type MediaPolicy, type RequestMedium } from './request-media.js';
import type { SessionPool } from './session-pool.js';
import { StopFilter } from './stop-strings.js';
import type { EngineSupervisor } from './supervisor.js';

export interface ServerContext {
  modelName: string;
  supervisor: EngineSupervisor;
  prompts: PromptBuilder;
  defaults: GenerationDefaults;
  pool: SessionPool;
  admission: Admission;
  metrics: Metrics;
  policy: MediaPolicy;
  log: Logger;
}

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[] | null;
}

export interface LogprobEntry extends TopLogprob {
  top_logprobs: TopLogprob[];
}

export interface Delta {
  content?: string;
  reasoning?: string;
  logprobs?: LogprobEntry[];
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
  prompt_tokens_details: { cached_tokens: number };
}

export interface CompletionResult {
  content: string;
  reasoning?: string;
  finishReason: 'stop' | 'length';
  usage: Usage;
  logprobs: LogprobEntry[];
  /** The client went away and the generation was cancelled. */
  cancelled: boolean;
}

/** Runs the completion; `onDelta` gets text as it comes (streaming), the result has all of it. */
export async function runCompletion(ctx: ServerContext, params: CompletionParams, signal: AbortSignal, onDelta: (d: Delta) => void, arrivedAt: number): Promise<CompletionResult> {
  const { messages, media: refs } = translateMessages(params.messages);
  checkMediaMix(refs.map((r) => ({ kind: r.kind, source: r.where })));
  const media: RequestMedium[] = [];
  for (const ref of refs) media.push(await loadRequestMedium(ref, params, ctx.policy, ctx.log));
  const { ids } = ctx.prompts.encode(messages, { enableThinking: params.enableThinking, grids: media.map((m) => m.loaded.grid), kinds: media.map((m) => m.loaded.kind) });
  const slot = await ctx.admission.acquire(signal);
  try {
    return await generate(ctx, params, ids, media, signal, onDelta, arrivedAt);
  } finally {
    slot.release();
  }
}

async function generate(ctx: ServerContext, params: CompletionParams, ids: Int32Array, media: RequestMedium[], signal: AbortSignal, onDelta: (d: Delta) => void, arrivedAt: number): Promise<CompletionResult> {
  const engine = ctx.supervisor.engine();
  const max = ctx.supervisor.info!.llm.max_positions;
  if (ids.length >= max) throw badRequest(`the prompt takes ${ids.length} positions but the model's context is ${max}; shorten the conversation or the images (mm_processor_kwargs.max_pixels)`, 'messages', 'context_length_exceeded');
  const keys = media.map((m) => m.key);
  const lease = ctx.pool.take(engine, ctx.supervisor.generation, ids, keys);
  const fresh = media.slice(SessionCache.mediaBefore(ids, lease.keep)).map((m) => m.loaded);
  const stream = new TextStreamer(ctx, params, onDelta, arrivedAt);
  let result;
  try {
    result = await runAnswer(engine, detokenizerFor(ctx.prompts), {
      session: lease.session, keep: lease.keep, ids: ids.slice(lease.keep),
      media: fresh.map((m) => ({ kind: m.kind, grid: m.grid })), pixels: fresh.map((m) => m.pixels),
      maxNewTokens: params.maxTokens,
      sampling: samplingFrom({ temperature: params.temperature, topK: params.topK, topP: params.topP, repetitionPenalty: params.repetitionPenalty, seed: params.seed }, ctx.defaults),
      stopIds: ctx.defaults.stopIds, topLogprobs: params.logprobs ? Math.max(params.topLogprobs, 0) : 0, thinking: params.enableThinking,
    }, { onToken: (t) => stream.token(t), signal: stream.signal(signal) }, params.thinkingBudget);
  } catch (e) {
    lease.fail(engine.running);
    throw e;
  }
  lease.finish(Int32Array.from([...ids, ...result.ids]), keys, lease.keep + result.cached);
  if (result.tail) stream.text(result.tail, result.tailChannel);
  stream.end();
  const done = result.done;
  const usage: Usage = {
    prompt_tokens: ids.length,
    completion_tokens: done.completion_tokens,
    total_tokens: ids.length + done.completion_tokens,
    prompt_tokens_details: { cached_tokens: done.cached_tokens },
  };
  ctx.metrics.promptTokens += ids.length;
  ctx.metrics.cachedTokens += done.cached_tokens;
  ctx.metrics.generationTokens += done.completion_tokens;
  const cancelled = done.finish_reason === 'cancelled' && !stream.stopped;
  if (cancelled) ctx.metrics.cancelled += 1;
  return {
    content: stream.answer.replaceAll('<|im_start|>', '').replaceAll('<|im_end|>', '').trim(),
    reasoning: params.enableThinking ? stream.reasoning.trim() : undefined,
    finishReason: stream.stopped || done.finish_reason === 'stop' ? 'stop' : 'length',
    usage,
    logprobs: stream.logprobs,
    cancelled,
  };
}

/** Turns tokens into deltas: reasoning until `</think>`, then answer (its leading blank lines dropped), through the stop filter. */
class TextStreamer {
  answer = '';
  reasoning = '';
  logprobs: LogprobEntry[] = [];
  private readonly stop: StopFilter;
  private readonly stopper = new AbortController();
  private answerStarted = false;
  private lastTokenAt?: number;

  constructor(
    private readonly ctx: ServerContext,
    private readonly params: CompletionParams,
    private readonly onDelta: (d: Delta) => void,
    private readonly arrivedAt: number,
  ) {
    this.stop = new StopFilter(params.stop);
  }

  get stopped(): boolean {
    return this.stop.stopped;
  }

  /** The client's signal, or a stop string: either ends the generation. */
  signal(client: AbortSignal): AbortSignal {
    return AbortSignal.any([client, this.stopper.signal]);
  }

  token(t: TokenOut): void {
    const now = performance.now();
    if (!t.forced) {
      if (this.lastTokenAt === undefined) this.ctx.metrics.ttft.observe((now - this.arrivedAt) / 1000);
      else this.ctx.metrics.itl.observe((now - this.lastTokenAt) / 1000);
      this.lastTokenAt = now;
    }
    if (this.stop.stopped) return;
    // Forced early-stop tokens of a thinking budget were not sampled: they have no log-probability.
    const lp = this.params.logprobs && !t.forced ? [this.entry(t.id, t.logprob, t.top ?? [])] : undefined;
    if (lp) this.logprobs.push(...lp);
    const text = t.id === THINK_START || t.id === THINK_END ? '' : t.text;
    this.emit(text, t.channel, lp);
  }

  text(text: string, channel: TokenOut['channel']): void {
    this.emit(text, channel, undefined);
  }

  end(): void {
    const rest = this.stop.flush();
    if (rest) this.send({ content: rest });
  }

  private emit(text: string, channel: TokenOut['channel'], logprobs: LogprobEntry[] | undefined): void {
    if (channel === 'thinking') {
      this.reasoning += text;
      if (text || logprobs) this.send({ ...(text ? { reasoning: text } : {}), ...(logprobs ? { logprobs } : {}) });
      return;
    }
    let piece = text;
    if (!this.answerStarted) {
      piece = piece.replace(/^\s+/, '');
      this.answerStarted = piece !== '';
    }
    const out = this.stop.push(piece);
    if (this.stop.stopped) this.stopper.abort();
    this.answer += out;
    if (out || logprobs) this.send({ ...(out ? { content: out } : {}), ...(logprobs ? { logprobs } : {}) });
  }

  private send(d: Delta): void {
    if (this.params.stream) this.onDelta(d);
  }

  private entry(id: number, logprob: number, top: Array<{ id: number; text: string; logprob: number }>): LogprobEntry {
    const one = (tid: number, lp: number): TopLogprob => {
      const bytes = this.ctx.prompts.tokenizer.tokenBytes(tid);
      const token = this.params.tokensAsIds ? `token_id:${tid}` : this.ctx.prompts.tokenizer.decode([tid], { skipSpecial: false });
      return { token, logprob: lp, bytes: bytes ? Array.from(bytes) : null };
    };
    return { ...one(id, logprob), top_logprobs: top.slice(0, this.params.topLogprobs).map((x) => one(x.id, x.logprob)) };
  }
}

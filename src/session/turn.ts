// One model turn through the engine: streams tokens with their text (UTF-8-safe) and channel
// (thinking until `</think>`, then answer), and supports cancellation through an AbortSignal.
import type { EngineProcess } from '../engine/engine-process.js';
import type { LoadedMedium } from '../cli/load-media.js';
import type { DoneEvent, MediaSpec, ProgressEvent, Sampling } from '../protocol/index.js';

export const THINK_START = 151667;
export const THINK_END = 151668;

export type Channel = 'thinking' | 'answer';

export interface TokenOut {
  id: number;
  text: string;
  channel: Channel;
  logprob: number;
  top?: Array<{ id: number; text: string; logprob: number }>;
  /** Appended by ovis (the thinking budget's early-stop text), not sampled by the model. */
  forced?: boolean;
}

/** What the turn needs from the tokenizer. */
export interface TextStream {
  push(id: number): string;
  flush(): string;
}

export interface TurnDetokenizer {
  /** A fresh streaming decoder: push(id) returns newly completed text. */
  stream(): TextStream;
  /** One token's text, for alternatives in top log-probabilities. */
  tokenText(id: number): string;
}

export interface TurnRequest {
  session: string;
  /** KV-cache positions of the session to keep (the conversation so far). */
  keep: number;
  ids: Int32Array;
  media: MediaSpec[];
  pixels: Float32Array[];
  maxNewTokens: number;
  sampling: Sampling;
  stopIds: number[];
  topLogprobs: number;
  /** The prompt ends in `<|im_start|>assistant\n`, so the model thinks first. */
  thinking: boolean;
}

/** Where a turn's output goes, and how it is stopped. */
export interface TurnHooks {
  onToken: (t: TokenOut) => void;
  /** The engine's steps before the first token (vision encoder layers, prefill positions). */
  onProgress?: (p: ProgressEvent) => void;
  /** Just before a request whose media the engine will encode (not those its cache holds) is sent. */
  onEncodeStart?: (media: readonly LoadedMedium[]) => void;
  signal?: AbortSignal;
}

export interface TurnResult {
  done: DoneEvent;
  /** Every generated id, the stop id included. */
  ids: number[];
  /**
   * How many of the request's ids, then the generated ids, the session's cache certainly holds after
   * `req.keep` (all but the last generated id; none when no token came: a cancelled prefill leaves
   * an unknown part).
   */
  cached: number;
  /** Text the decoder held back to the end (an incomplete UTF-8 sequence, as U+FFFD). */
  tail: string;
  tailChannel: Channel;
}

export async function runTurn(
  engine: EngineProcess,
  detok: TurnDetokenizer,
  req: TurnRequest,
  hooks: TurnHooks,
  /** Continue an earlier turn's text stream (a character may span the two); flushed at the end. */
  stream: TextStream = detok.stream(),
  /** False leaves held-back bytes in `stream` for a turn that continues this one. */
  flush = true,
): Promise<TurnResult> {
  const { onToken, onProgress, signal } = hooks;
  let channel: Channel = req.thinking ? 'thinking' : 'answer';
  const ids: number[] = [];
  const { id, done } = engine.generate(
    {
      session: req.session, keep: req.keep, media: req.media, max_new_tokens: req.maxNewTokens,
      sampling: req.sampling, stop_ids: req.stopIds, top_logprobs: req.topLogprobs,
    },
    req.ids,
    req.pixels,
    (ev) => {
      ids.push(ev.token);
      const out: TokenOut = { id: ev.token, text: stream.push(ev.token), channel, logprob: ev.logprob };
      if (req.topLogprobs > 0) out.top = ev.top.map(([tid, lp]) => ({ id: tid, text: detok.tokenText(tid), logprob: lp }));
      // `</think>` itself belongs to the thinking channel; what follows is the answer.
      if (ev.token === THINK_END) channel = 'answer';
      onToken(out);
    },
    onProgress,
  );
  const onAbort = () => engine.cancel(id);
  signal?.addEventListener('abort', onAbort, { once: true });
  if (signal?.aborted) onAbort();
  try {
    const result = await done;
    const cached = ids.length === 0 ? 0 : req.ids.length + ids.length - 1;
    return { done: result, ids, cached, tail: flush ? stream.flush() : '', tailChannel: channel };
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}

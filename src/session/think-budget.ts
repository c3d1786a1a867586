// Budgeted thinking (model-spec.md §8.3, the reference's `thinking_budget`): think for at most
// `budget` tokens; if the model has not finished by then, close its thinking with the reference's
// early-stop text and let it answer in what is left of max_new_tokens. The second phase continues
// the same engine session from its KV cache, so only the appended ids are prefilled.
//
// Accounting (our choice, documented in --help and the man page): max_new_tokens bounds the tokens
// the MODEL generates. The 24 early-stop ids are ovis's, not the model's, so they do not count: the
// answer gets max_new_tokens minus the thinking tokens. (The reference subtracts them too, so with a
// small max_new_tokens its answer was empty; see issue 8.) The answer always has at least one token,
// since max_new_tokens is first raised above the budget as the reference's chat() does.
import type { EngineProcess } from '../engine/engine-process.js';
import { runTurn, THINK_END, type TurnDetokenizer, type TurnHooks, type TurnRequest, type TurnResult } from './turn.js';

/** "\n\nConsidering the limited time by the user, I have to give the solution based on the
 * thinking directly now.\n</think>\n\n": 24 ids, appended when the budget runs out mid-thought. */
export const EARLY_STOP_IDS = [271, 82796, 279, 7199, 882, 553, 279, 1196, 11, 358, 614, 311, 2968, 279, 6291, 3118, 389, 279, 7274, 5961, 1431, 624, 151668, 271];

/** The reference's chat(): a max_new_tokens within the budget is extended to leave room to answer. */
export function totalTokens(maxNewTokens: number, budget: number): number {
  return maxNewTokens <= budget ? budget + Math.min(1024, maxNewTokens) : maxNewTokens;
}

export async function runBudgetedTurn(
  engine: EngineProcess,
  detok: TurnDetokenizer,
  req: TurnRequest,
  budget: number,
  hooks: TurnHooks,
): Promise<TurnResult> {
  const { onToken } = hooks;
  const total = totalTokens(req.maxNewTokens, budget);
  const stream = detok.stream();
  const first = await runTurn(engine, detok, { ...req, maxNewTokens: Math.min(budget, total) }, hooks, stream, false);
  // Finished (a stop id) or interrupted inside the budget: that is the answer.
  if (first.done.finish_reason !== 'length') return { ...first, tail: stream.flush() };
  const forced = first.ids.includes(THINK_END) ? [] : EARLY_STOP_IDS;
  let channel = first.tailChannel;
  for (const id of forced) {
    // Not sampled, so no log-probability: marked `forced` (JSON shows logprob null).
    onToken({ id, text: stream.push(id), channel, logprob: Number.NaN, forced: true });
    if (id === THINK_END) channel = 'answer';
  }
  // Positive: the first phase stopped at the budget, and total > budget (totalTokens).
  const rest = total - first.ids.length;
  // The cache holds the prompt and all generated ids but the last: send that one again, then the text.
  const second = await runTurn(engine, detok, {
    ...req,
    keep: req.keep + req.ids.length + first.ids.length - 1,
    ids: Int32Array.from([first.ids[first.ids.length - 1], ...forced]),
    media: [],
    pixels: [],
    maxNewTokens: rest,
    thinking: channel === 'thinking',
  }, hooks, stream);
  const a = first.done;
  const b = second.done;
  // Phase 2 kept the prompt and the thoughts but the last; what it holds after that is its own count.
  const cached = req.ids.length + first.ids.length - 1 + second.cached;
  return {
    ids: [...first.ids, ...forced, ...second.ids],
    cached,
    tail: second.tail,
    tailChannel: second.tailChannel,
    done: {
      ...b,
      prompt_tokens: a.prompt_tokens,
      cached_tokens: a.cached_tokens,
      completion_tokens: a.completion_tokens + forced.length + b.completion_tokens,
      timings: {
        vision_ms: a.timings.vision_ms,
        prefill_ms: a.timings.prefill_ms + b.timings.prefill_ms,
        first_token_ms: a.timings.first_token_ms,
        decode_ms: a.timings.decode_ms + b.timings.decode_ms,
        total_ms: a.timings.total_ms + b.timings.total_ms,
      },
    },
  };
}

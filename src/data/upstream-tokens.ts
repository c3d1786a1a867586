// Ids and labels of an upstream sample exactly as AIDC-AI/Ovis's Qwen3ConversationFormatter builds
// them (ovis/model/conversation_formatter.py), with our tokenizer and placeholder expansion:
//   * each turn is `role + value + "<|im_end|>\n"`, role one of `<|im_start|>system|user|assistant\n`;
//     a gpt turn without its own think block gets the empty one `<think>\n\n</think>\n\n` after the role;
//   * each turn is tokenised on its own, split at its media tag (`<video>` if present, else `<image>`),
//     which is what encodePrompt does; every medium becomes [start, atoms…, end];
//   * a gpt turn's labels are its ids after the role (and the empty think block), up to and with
//     `<|im_end|>`; the "\n" after it is never trained and, after a final gpt turn (not ignored_gpt),
//     dropped;
//   * ignored_gpt, human and system turns are not trained.
import { encodePrompt, type PromptTokenizer } from '../prompt/encode.js';
import type { GridTHW, MediaKind } from '../prompt/types.js';
import { countOf, EMPTY_THINK, hasThinking, IMAGE_TAG, VIDEO_TAG } from './placeholders.js';
import { TokenSequence } from './token-sequence.js';
import type { UpstreamSample } from './types.js';

const ROLE: Record<string, string> = {
  system: '<|im_start|>system\n',
  human: '<|im_start|>user\n',
  gpt: '<|im_start|>assistant\n',
  ignored_gpt: '<|im_start|>assistant\n',
};
const IM_END = '<|im_end|>\n';

const prefixCache = new WeakMap<PromptTokenizer, { think: number; noThink: number }>();

function prefixCounts(tok: PromptTokenizer): { think: number; noThink: number } {
  let c = prefixCache.get(tok);
  if (!c) {
    c = { think: tok.encodeText(ROLE.gpt).length, noThink: tok.encodeText(ROLE.gpt + EMPTY_THINK).length };
    prefixCache.set(tok, c);
  }
  return c;
}

/** The text upstream trains on for one turn. */
export function upstreamTurnText(from: string, value: string): string {
  const think = from === 'gpt' && !hasThinking(value) ? EMPTY_THINK : '';
  return ROLE[from] + think + value + IM_END;
}

/** `grids[k]` belongs to the k-th medium of the sample (all of one `kind`). */
export function upstreamSequence(tok: PromptTokenizer, sample: UpstreamSample, grids: readonly GridTHW[], kind: MediaKind): TokenSequence {
  const seq = new TokenSequence();
  const prefix = prefixCounts(tok);
  let next = 0;
  for (const turn of sample.conversations) {
    const text = upstreamTurnText(turn.from, turn.value);
    const tag = text.includes(VIDEO_TAG) ? VIDEO_TAG : IMAGE_TAG;
    const n = countOf(text, tag);
    const ids = encodePrompt(tok, text, grids.slice(next, next + n), Array(n).fill(tag === VIDEO_TAG ? 'video' : kind));
    next += n;
    if (turn.from === 'gpt') {
      const from = hasThinking(turn.value) ? prefix.think : prefix.noThink;
      seq.push(ids, from, ids.length - 1);
    } else {
      seq.push(ids);
    }
  }
  // only after a gpt turn (Qwen3ConversationFormatter.format checks `from == "gpt"`, not ignored_gpt)
  if (sample.conversations[sample.conversations.length - 1].from === 'gpt') seq.pop();
  return seq;
}

// Ids and labels of an ms-swift sample as its Ovis2.5 template builds them in training
// (swift/llm/template: QwenTemplateMeta + Ovis2_5Template), with our tokenizer:
//   * system: `<|im_start|>system\n{system}<|im_end|>\n` (ovis2_5 has no default system);
//   * each round: `<|im_start|>user\n{query}<|im_end|>\n<|im_start|>assistant\n`, then the response,
//     then `<|im_end|>\n` between rounds or `<|im_end|>` after the last;
//   * each `<image>`/`<video>` tag in a query becomes the medium followed by "\n"
//     (Ovis2_5Template.replace_tag returns [[-200], '\n']), expanded to [start, atoms…, end];
//   * responses are trained (loss_scale "default") unless `"loss": false`, and so is the final
//     `<|im_end|>`; with loss_scale ignore_empty_think a whitespace-only think block
//     (`<think>\s*</think>\s*`) is not. Assumed where the docs are silent: the `<|im_end|>\n` between
//     rounds is not trained (ms-swift marks chat_sep as "other" context);
//   * adjacent text pieces with the same loss weight are joined and each piece is tokenised on its
//     own (ms-swift's _simplify_context_list, then one tokenizer call per piece).
import { encodePrompt, type PromptTokenizer } from '../prompt/encode.js';
import type { GridTHW } from '../prompt/types.js';
import { TokenSequence } from './token-sequence.js';
import type { SwiftSample } from './types.js';

type Piece = { text: string; trained: boolean } | { medium: 'image' | 'video' };

const EMPTY_THINK_RE = /<think>\s*<\/think>\s*/g;

export interface SwiftTokenOptions {
  /** loss_scale ignore_empty_think (what ovis finetune passes); default true */
  ignoreEmptyThink?: boolean;
}

export function swiftSequence(tok: PromptTokenizer, sample: SwiftSample, grids: readonly GridTHW[], options: SwiftTokenOptions = {}): TokenSequence {
  const pieces: Piece[] = [];
  const text = (t: string, trained = false) => {
    if (t === '') return;
    const prev = pieces[pieces.length - 1];
    if (prev && 'text' in prev && prev.trained === trained) prev.text += t;
    else pieces.push({ text: t, trained });
  };
  const messages = sample.messages;
  let start = 0;
  if (messages[0]?.role === 'system') {
    text(`<|im_start|>system\n${messages[0].content}<|im_end|>\n`);
    start = 1;
  }
  for (let i = start; i < messages.length; i += 2) {
    const query = messages[i];
    const answer = messages[i + 1];
    text('<|im_start|>user\n');
    query.content.split(/(<image>|<video>)/).forEach((part, k) => {
      if (k % 2 === 1) {
        pieces.push({ medium: part === '<video>' ? 'video' : 'image' });
        text('\n');
      } else {
        text(part);
      }
    });
    text('<|im_end|>\n<|im_start|>assistant\n');
    if (!answer) break;
    const trained = answer.loss !== false;
    splitEmptyThink(answer.content, options.ignoreEmptyThink ?? true).forEach(([t, empty]) => text(t, trained && !empty));
    const last = i + 2 >= messages.length;
    text(last ? '<|im_end|>' : '<|im_end|>\n', last && trained);
  }

  const seq = new TokenSequence();
  let next = 0;
  for (const p of pieces) {
    if ('text' in p) {
      const ids = tok.encodeText(p.text);
      seq.push(ids, 0, p.trained ? ids.length : 0);
    } else {
      // one medium alone through encodePrompt: [start, atoms…, end]
      const tag = p.medium === 'video' ? '<video>' : '<image>';
      seq.push(encodePrompt(tok, tag, [grids[next++]], [p.medium]));
    }
  }
  return seq;
}

/** The response cut into [text, isEmptyThinkBlock] parts. */
function splitEmptyThink(content: string, ignore: boolean): Array<[string, boolean]> {
  if (!ignore) return [[content, false]];
  const out: Array<[string, boolean]> = [];
  let at = 0;
  for (const m of content.matchAll(EMPTY_THINK_RE)) {
    if (m.index! > at) out.push([content.slice(at, m.index), false]);
    out.push([m[0], true]);
    at = m.index! + m[0].length;
  }
  if (at < content.length) out.push([content.slice(at), false]);
  return out;
}

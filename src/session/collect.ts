// Collects a turn's streamed text by channel, as the reference's chat() returns it (model-spec.md
// §8.3): thinking and answer each stripped of surrounding whitespace, the think tags left out, and
// literal <|im_start|>/<|im_end|> removed from the answer. What a conversation's history keeps.
import { THINK_END, THINK_START, type TokenOut } from './turn.js';

export class ChannelText {
  private parts = { thinking: '', answer: '' };
  /** Tokens the model sampled per channel (forced early-stop tokens not counted). */
  readonly sampled = { thinking: 0, answer: 0 };

  push(t: TokenOut): void {
    if (!t.forced) this.sampled[t.channel] += 1;
    if (t.id === THINK_START || t.id === THINK_END) return;
    this.parts[t.channel] += t.text;
  }

  /** Text the stream decoder held back to the end. */
  pushTail(text: string, channel: TokenOut['channel']): void {
    this.parts[channel] += text;
  }

  get thinking(): string {
    return this.parts.thinking.trim();
  }

  get answer(): string {
    return this.parts.answer.replaceAll('<|im_start|>', '').replaceAll('<|im_end|>', '').trim();
  }
}

// Adapts the prompt module's tokenizer to what a turn needs for streaming text.
import type { PromptBuilder } from '../prompt/index.js';
import type { TurnDetokenizer } from '../session/turn.js';

export function detokenizerFor(prompts: PromptBuilder): TurnDetokenizer {
  return {
    stream: () => prompts.streamDecoder({ skipSpecial: true }),
    tokenText: (id) => prompts.tokenizer.decode([id], { skipSpecial: false }),
  };
}

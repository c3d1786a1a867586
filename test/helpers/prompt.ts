// The fixture's real PromptBuilder (tokenizer.json + chat template), for tests that compute the
// ids a conversation must be sent as, independently of how the CLI assembled it.
import { PromptBuilder, type ChatMessage } from '../../src/prompt/index.js';
import { fixtureDir } from './cli.js';

let builder: Promise<PromptBuilder> | undefined;

export function fixturePrompts(): Promise<PromptBuilder> {
  builder ??= PromptBuilder.load(fixtureDir);
  return builder;
}

/** Ids of a text-only conversation as the chat template renders it (thinking off unless asked). */
export async function textPromptIds(messages: ChatMessage[], enableThinking = false): Promise<number[]> {
  const pb = await fixturePrompts();
  return Array.from(pb.encode(messages, { enableThinking, grids: [] }).ids);
}

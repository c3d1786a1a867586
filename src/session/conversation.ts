// A conversation as ovis keeps it between turns and in files: the messages the chat template
// renders, the media their placeholders stand for (in placeholder order), and each assistant
// turn's thinking (kept for people; the template renders only the answer, as the reference's
// history does).
import type { ChatMessage, ContentItem } from '../prompt/index.js';
import type { MediaArg } from '../cli/media-args.js';

export interface ConversationMessage extends ChatMessage {
  /** An assistant turn's thinking, saved as `reasoning_content` (vLLM's field). */
  reasoning?: string;
}

export interface Conversation {
  messages: ConversationMessage[];
  /** Media of the conversation in placeholder order. */
  media: MediaArg[];
}

export const emptyConversation = (): Conversation => ({ messages: [], media: [] });

/** The number of media a message's content refers to (image/video items). */
export function mediaCountOf(content: string | ContentItem[]): number {
  return typeof content === 'string' ? 0 : content.filter((c) => c.type !== 'text').length;
}

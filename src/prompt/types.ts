// Shared prompt types: what the CLI, the session layer and the server hand to the prompt builder.

/** One part of a message's content, as in the model's chat template (OpenAI-style parts). */
export type ContentItem = { type: 'text'; text: string } | { type: 'image' } | { type: 'video' };

export type Role = 'system' | 'user' | 'assistant';

export interface ChatMessage {
  role: Role;
  content: string | ContentItem[];
}

/** The kind of a medium attached to a conversation, in the order its placeholder appears. */
export type MediaKind = 'image' | 'video';

/** A medium's patch grid (t, h, w) in 16-pixel patches; a whole video is one grid (t = frames). */
export type GridTHW = readonly [number, number, number];

/** Ids the engine understands besides text ids (model-spec §3.4). */
export const VISUAL_ATOM = -300;
export const IMAGE_START = -301;
export const IMAGE_END = -302;
export const VIDEO_START = -303;
export const VIDEO_END = -304;

/** Placeholder text the chat template emits for a medium item. */
export const IMAGE_PLACEHOLDER = '<image>';
export const VIDEO_PLACEHOLDER = '<video>';

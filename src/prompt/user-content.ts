// Builds a user message's content from the prompt text and the attached media (architecture.md,
// "Prompt assembly on the command line").
//
// Without `<image>`/`<video>` markers the media come first, then the text, as the reference's chat() does;
// the template joins the items with "\n". With markers the text must be kept byte for byte, but the
// template deletes `<image>`/`<video>` typed inside a text item, and splitting the text into several items
// would add "\n" between them. So each marker becomes a sentinel the template leaves alone (a Unicode
// noncharacter, reserved by Unicode for exactly such internal use), and restorePlaceholders() turns the
// sentinels back into placeholders after rendering.
import { InputError } from '../errors.js';
import {
  IMAGE_PLACEHOLDER,
  VIDEO_PLACEHOLDER,
  type ChatMessage,
  type ContentItem,
  type MediaKind,
} from './types.js';

/** Stand-ins for markers inside text items; never produced by the template itself. */
export const IMAGE_SENTINEL = '\uFDD0';
export const VIDEO_SENTINEL = '\uFDD1';

const MARKER_RE = /<image>|<video>/g;
const SENTINEL_RE = /[\uFDD0\uFDD1]/g;

const kindOfMarker = (marker: string): MediaKind => (marker === IMAGE_PLACEHOLDER ? 'image' : 'video');

/**
 * Content of a user turn for `text` and `media` (kinds in the order given on the command line).
 * Throws InputError when markers and media do not pair up one to one, in order and kind.
 */
export function buildUserContent(text: string, media: readonly MediaKind[]): ContentItem[] {
  if (hasSentinel(text)) {
    throw new InputError(
      'the prompt contains the Unicode noncharacter U+FDD0 or U+FDD1, which ovis reserves for media ' +
        'markers; remove it from the prompt',
    );
  }
  const markers = text.match(MARKER_RE) ?? [];
  if (markers.length === 0) {
    const items: ContentItem[] = media.map((kind) => ({ type: kind }));
    if (text !== '') items.push({ type: 'text', text });
    return items;
  }
  if (markers.length !== media.length) {
    const given = media.length === 0 ? 'no image or video was' : `${media.length} image/video file${media.length === 1 ? ' was' : 's were'}`;
    throw new InputError(
      `the prompt has ${markers.length} <image>/<video> marker${markers.length === 1 ? '' : 's'} but ${given} given; ` +
        'give one image or video per marker, in order, or remove the markers to put all media before the text',
    );
  }
  markers.forEach((marker, i) => {
    const kind = kindOfMarker(marker);
    if (kind !== media[i]) {
      throw new InputError(
        `marker ${i + 1} in the prompt is ${marker} but medium ${i + 1} is ${media[i] === 'image' ? 'an image' : 'a video'}; ` +
          `use ${media[i] === 'image' ? IMAGE_PLACEHOLDER : VIDEO_PLACEHOLDER} for it, or reorder the media`,
      );
    }
  });
  const withSentinels = text.replace(MARKER_RE, (m) => (m === IMAGE_PLACEHOLDER ? IMAGE_SENTINEL : VIDEO_SENTINEL));
  return [{ type: 'text', text: withSentinels }];
}

/** Turns the sentinels left in rendered template output back into `<image>`/`<video>` placeholders. */
export function restorePlaceholders(rendered: string): string {
  return rendered.replace(SENTINEL_RE, (s) => (s === IMAGE_SENTINEL ? IMAGE_PLACEHOLDER : VIDEO_PLACEHOLDER));
}

/** Whether a string holds a sentinel (only text built by buildUserContent may). */
export function hasSentinel(text: string): boolean {
  return text.includes(IMAGE_SENTINEL) || text.includes(VIDEO_SENTINEL);
}

/**
 * The media a conversation refers to, in placeholder order: `{type:'image'|'video'}` items and marker
 * sentinels, across all messages (every turn re-sends all its media, as the reference does).
 * Only user and system turns count: the template drops media from assistant turns.
 */
export function mediaKindsOf(messages: readonly ChatMessage[]): MediaKind[] {
  const kinds: MediaKind[] = [];
  const fromText = (text: string): void => {
    for (const ch of text) {
      if (ch === IMAGE_SENTINEL) kinds.push('image');
      else if (ch === VIDEO_SENTINEL) kinds.push('video');
    }
  };
  for (const m of messages) {
    if (m.role === 'assistant') continue;
    if (typeof m.content === 'string') {
      fromText(m.content);
      continue;
    }
    for (const item of m.content) {
      if (item.type === 'text') fromText(item.text);
      else kinds.push(item.type);
    }
  }
  return kinds;
}

// Rendered prompt text → the engine's input ids, with each medium's placeholder expanded into its
// visual slots (model-spec §3.4).
//
// The text is split at placeholders BEFORE tokenising: tokenised as text, "<image>\n" would merge the
// newline into ">\n" (397), while the reference tokenises the chunk after a placeholder on its own, so the
// "\n" becomes 198. Any other split would shift every id after the first image.
import { InputError } from '../errors.js';
import type { OvisTokenizer } from './tokenizer.js';
import {
  IMAGE_END,
  IMAGE_PLACEHOLDER,
  IMAGE_START,
  VIDEO_END,
  VIDEO_PLACEHOLDER,
  VIDEO_START,
  VISUAL_ATOM,
  type GridTHW,
  type MediaKind,
} from './types.js';

/** The part of the tokenizer encodePrompt needs (lets tests and other callers pass a stand-in). */
export type PromptTokenizer = Pick<OvisTokenizer, 'encodeText' | 'specialIds'>;

/** Number of visual atoms a medium becomes: t·h·w patches merged 2×2 (hidden_stride² = 4). */
export function visualTokenCount(grid: GridTHW): number {
  const [t, h, w] = grid;
  const patches = t * h * w;
  if (![t, h, w].every((v) => Number.isInteger(v) && v > 0) || patches % 4 !== 0) {
    // Grids come from the media code, which always yields even h and w; anything else is our bug.
    throw new Error(`invalid visual grid (t=${t}, h=${h}, w=${w}): t·h·w must be a positive multiple of 4`);
  }
  return patches / 4;
}

/**
 * Ids for `rendered` (the chat template's output with placeholders restored). `grids[k]` and `kinds[k]`
 * belong to the k-th placeholder. Returns text ids ≥ 0 and, per medium, [start, −300 × N, end] with
 * start/end −301/−302 (image) or −303/−304 (video).
 */
export function encodePrompt(
  tokenizer: PromptTokenizer,
  rendered: string,
  grids: readonly GridTHW[],
  kinds: readonly MediaKind[],
): Int32Array {
  if (grids.length !== kinds.length) {
    throw new Error(`encodePrompt: ${grids.length} grids for ${kinds.length} media`);
  }
  const hasImage = kinds.includes('image');
  const hasVideo = kinds.includes('video');
  if (hasImage && hasVideo) {
    // The reference rejects mixing; with a video present it would not even split on <image>.
    throw new InputError('images and videos cannot be mixed in one conversation; send them in separate conversations');
  }
  // As the reference: with any <video> in the text only <video> splits, and <image> stays plain text.
  const placeholder = rendered.includes(VIDEO_PLACEHOLDER) ? VIDEO_PLACEHOLDER : IMAGE_PLACEHOLDER;
  const chunks = rendered.split(placeholder);
  const slots = chunks.length - 1;
  const expected: MediaKind = placeholder === VIDEO_PLACEHOLDER ? 'video' : 'image';
  if (slots !== kinds.length || (kinds.length > 0 && kinds[0] !== expected)) {
    const what = kinds.length === 0 ? 'no media' : `${kinds.length} ${kinds[0]}${kinds.length === 1 ? '' : 's'}`;
    throw new InputError(
      `the conversation has ${slots} ${placeholder} placeholder${slots === 1 ? '' : 's'} but ${what}; ` +
        'every image or video needs exactly one placeholder',
    );
  }

  const chunkIds = chunks.map((chunk) => tokenizer.encodeText(chunk));
  const endOfText = tokenizer.specialIds.endOfText;
  if (chunkIds.some((ids) => ids.includes(endOfText))) {
    // The reference masks <|endoftext|> out of attention, which shifts every later position.
    throw new InputError('the prompt contains <|endoftext|>, which the model cannot take as input; remove it');
  }

  const counts = grids.map(visualTokenCount);
  let length = 0;
  for (const ids of chunkIds) length += ids.length;
  for (const n of counts) length += n + 2;
  const out = new Int32Array(length);
  const [start, end] = expected === 'video' ? [VIDEO_START, VIDEO_END] : [IMAGE_START, IMAGE_END];
  let pos = 0;
  chunkIds.forEach((ids, k) => {
    out.set(ids, pos);
    pos += ids.length;
    if (k === slots) return;
    out[pos++] = start;
    out.fill(VISUAL_ATOM, pos, pos + counts[k]);
    pos += counts[k];
    out[pos++] = end;
  });
  return out;
}

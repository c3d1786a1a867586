// Target size of an image before the ViT: model-spec.md §2.2, transcribed operation by operation.
// Everything is f64 (JS numbers) and `round` is Python's round-half-to-even, because the reference
// is Python; `Math.round` (half up) would pick a different size for e.g. height 80 (80/32 = 2.5).
import { InputError } from '../errors.js';

/** patch_size 16 × hidden_stride 2: the output sides are multiples of this (pixels). */
export const RESIZE_FACTOR = 32;

/** Reference budgets (pixels = height·width after resizing); see model-spec.md §2.2's table. */
export const IMAGE_MIN_PIXELS = 448 * 448;
export const IMAGE_MAX_PIXELS = 1792 * 1792;
/** The official demos' per-frame budget for video. */
export const VIDEO_MIN_PIXELS = 448 * 448;
export const VIDEO_MAX_PIXELS = 896 * 896;

export interface Size {
  /** pixels */
  width: number;
  /** pixels */
  height: number;
}

/** Python 3 `round(x)` for a float: nearest integer, ties to even. `x - floor(x)` is exact in f64. */
export function pyRound(x: number): number {
  const f = Math.floor(x);
  const d = x - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/**
 * Size (height, width in pixels, both multiples of `factor`) that an image of the given original
 * size is resized to. Throws InputError when the result would be empty (absurd aspect ratio under a
 * small budget), where the reference would crash.
 */
export function smartResize(
  height: number,
  width: number,
  minPixels: number,
  maxPixels: number,
  factor: number = RESIZE_FACTOR,
): Size {
  if (!(Number.isInteger(height) && Number.isInteger(width) && height > 0 && width > 0)) {
    throw new InputError(`cannot resize an image of ${width}×${height} pixels: both sides must be positive`);
  }
  const origW = width;
  const origH = height;
  let h = height;
  let w = width;
  if (h < factor || w < factor) {
    // tiny side: scale it up to one factor, keeping the aspect ratio (note: f / h * w, in that order)
    if (h < w) {
      w = pyRound((factor / h) * w);
      h = factor;
    } else {
      h = pyRound((factor / w) * h);
      w = factor;
    }
  } else if (Math.max(h, w) / Math.min(h, w) > 200) {
    // extreme aspect ratio: clamp the nominal long side to 200× the short one
    if (h > w) h = 200 * w;
    else w = 200 * h;
  }
  let hb = pyRound(h / factor) * factor;
  let wb = pyRound(w / factor) * factor;
  if (hb * wb > maxPixels) {
    const beta = Math.sqrt((h * w) / maxPixels);
    hb = Math.floor(h / beta / factor) * factor;
    wb = Math.floor(w / beta / factor) * factor;
  } else if (hb * wb < minPixels) {
    const beta = Math.sqrt(minPixels / (h * w));
    hb = Math.ceil((h * beta) / factor) * factor;
    wb = Math.ceil((w * beta) / factor) * factor;
  }
  if (hb <= 0 || wb <= 0) {
    throw new InputError(
      `an image of ${origW}×${origH} pixels has too extreme an aspect ratio for a budget of ` +
        `${maxPixels} pixels (it would be resized to ${wb}×${hb}); crop it or raise the maximum pixel count`,
    );
  }
  return { height: hb, width: wb };
}

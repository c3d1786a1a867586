// One image file → the engine's vision input: decode (sharp) → smart_resize size → Pillow-exact
// bilinear resize → normalise + patchify into pixel_values [N, 768] with grid [1, gh, gw].
import { decodeImage, DEFAULT_MAX_INPUT_PIXELS } from './decode-image.js';
import { patchify, type Grid } from './patchify.js';
import { resizeBilinearRgb } from './pil-bilinear.js';
import { IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, smartResize, type Size } from './smart-resize.js';

export interface PrepareImageOptions {
  /** Pixel budget after resizing (default 448·448 .. 1792·1792, model-spec.md §2.2). */
  minPixels?: number;
  maxPixels?: number;
  /** Decompression-bomb guard on the decoded image (default DEFAULT_MAX_INPUT_PIXELS). */
  maxInputPixels?: number;
  /** Name for error messages when `source` is a buffer. */
  name?: string;
}

/** Wall-clock milliseconds per stage. */
export interface MediaTimings {
  decodeMs: number;
  resizeMs: number;
  patchifyMs: number;
}

export interface PreparedImage {
  /** [N, 768] f32 normalised patches in merge-cell order; N = gh·gw */
  pixels: Float32Array;
  /** [1, gh, gw] in 16-pixel patches */
  grid: Grid;
  /** pixels after decode (EXIF orientation applied) */
  original: Size;
  /** pixels fed to the model */
  resized: Size;
  timings: MediaTimings;
}

export async function prepareImage(source: string | Uint8Array, options: PrepareImageOptions = {}): Promise<PreparedImage> {
  const t0 = performance.now();
  const img = await decodeImage(source, {
    maxInputPixels: options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS,
    name: options.name,
  });
  const t1 = performance.now();
  const size = smartResize(img.height, img.width, options.minPixels ?? IMAGE_MIN_PIXELS, options.maxPixels ?? IMAGE_MAX_PIXELS);
  const rgb = resizeBilinearRgb(img.data, img.width, img.height, size.width, size.height);
  const t2 = performance.now();
  const { pixels, grid } = patchify([rgb], size.width, size.height);
  const t3 = performance.now();
  return {
    pixels,
    grid,
    original: { width: img.width, height: img.height },
    resized: size,
    timings: { decodeMs: t1 - t0, resizeMs: t2 - t1, patchifyMs: t3 - t2 },
  };
}

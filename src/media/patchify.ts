// Patch flattening (model-spec.md §2.5): frames [t][H, W, 3] → pixel_values [t·gh·gw, 768] in
// merge-cell order, which is the ViT's sequence order: the 4 patches of each 2×2 merge cell are
// consecutive (top-left, top-right, bottom-left, bottom-right), cells in raster order, frames
// concatenated. Column c = ch·256 + ky·16 + kx (temporal_patch_size 1).
import { NORMALIZE_LUT } from './normalize.js';

export const PATCH_SIZE = 16;
export const MERGE_SIZE = 2;
/** 3 channels × 16 × 16 */
export const PATCH_DIM = 3 * PATCH_SIZE * PATCH_SIZE;

export type Grid = [t: number, gh: number, gw: number];

export interface Patches {
  /** [t·gh·gw, 768] f32, normalised */
  pixels: Float32Array;
  /** [frames, height/16, width/16] */
  grid: Grid;
}

/**
 * Patchify same-size frames ([height, width, 3] each, interleaved). Uint8Array frames are normalised
 * on the way through the 256-entry table (one pass, no [3,H,W] intermediate); Float32Array frames
 * are taken as already normalised. `height` and `width` must be multiples of 32.
 */
export function patchify(frames: readonly (Uint8Array | Float32Array)[], width: number, height: number): Patches {
  const cell = PATCH_SIZE * MERGE_SIZE;
  if (frames.length === 0) throw new RangeError('patchify: no frames');
  if (width % cell !== 0 || height % cell !== 0 || width <= 0 || height <= 0) {
    throw new RangeError(`patchify: ${width}×${height} is not a positive multiple of ${cell}`);
  }
  const gh = height / PATCH_SIZE;
  const gw = width / PATCH_SIZE;
  const perFrame = gh * gw;
  const pixels = new Float32Array(frames.length * perFrame * PATCH_DIM);
  for (let t = 0; t < frames.length; t++) {
    const img = frames[t];
    if (img.length !== width * height * 3) {
      throw new RangeError(`patchify: frame ${t} has ${img.length} values, expected ${width * height * 3}`);
    }
    let r = t * perFrame;
    for (let by = 0; by < gh / MERGE_SIZE; by++) {
      for (let bx = 0; bx < gw / MERGE_SIZE; bx++) {
        for (let sy = 0; sy < MERGE_SIZE; sy++) {
          for (let sx = 0; sx < MERGE_SIZE; sx++) {
            const y0 = (by * MERGE_SIZE + sy) * PATCH_SIZE;
            const x0 = (bx * MERGE_SIZE + sx) * PATCH_SIZE;
            if (img instanceof Uint8Array) copyPatchU8(img, width, x0, y0, pixels, r * PATCH_DIM);
            else copyPatchF32(img, width, x0, y0, pixels, r * PATCH_DIM);
            r++;
          }
        }
      }
    }
  }
  return { pixels, grid: [frames.length, gh, gw] };
}

function copyPatchU8(img: Uint8Array, width: number, x0: number, y0: number, out: Float32Array, o: number): void {
  const lut = NORMALIZE_LUT;
  for (let ky = 0; ky < PATCH_SIZE; ky++) {
    let s = ((y0 + ky) * width + x0) * 3;
    const row = o + ky * PATCH_SIZE;
    for (let kx = 0; kx < PATCH_SIZE; kx++) {
      out[row + kx] = lut[img[s]];
      out[row + 256 + kx] = lut[img[s + 1]];
      out[row + 512 + kx] = lut[img[s + 2]];
      s += 3;
    }
  }
}

function copyPatchF32(img: Float32Array, width: number, x0: number, y0: number, out: Float32Array, o: number): void {
  for (let ky = 0; ky < PATCH_SIZE; ky++) {
    let s = ((y0 + ky) * width + x0) * 3;
    const row = o + ky * PATCH_SIZE;
    for (let kx = 0; kx < PATCH_SIZE; kx++) {
      out[row + kx] = img[s];
      out[row + 256 + kx] = img[s + 1];
      out[row + 512 + kx] = img[s + 2];
      s += 3;
    }
  }
}

// uint8 → model input value (model-spec.md §2.4): v = f32(u · (1/255 as the f64 literal)),
// x = f32(f32(v − 0.5) / 0.5). Mean = std = 0.5 for every channel, so one 256-entry table is
// exact; the engine later rounds these to bf16 itself.

/** The reference's rescale factor, written as Python prints 1/255 (f64). */
const RESCALE = 0.00392156862745098;

/** One channel value, computed with the reference's roundings. */
export function normalizeValue(u: number): number {
  const v = Math.fround(u * RESCALE);
  return Math.fround(Math.fround(v - 0.5) / 0.5);
}

/** [256] normalised value of each uint8 level. */
export const NORMALIZE_LUT: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let u = 0; u < 256; u++) lut[u] = normalizeValue(u);
  return lut;
})();

/** Element-wise normalisation, same layout in and out. */
export function normalize(src: Uint8Array): Float32Array {
  const out = new Float32Array(src.length);
  for (let i = 0; i < src.length; i++) out[i] = NORMALIZE_LUT[src[i]];
  return out;
}

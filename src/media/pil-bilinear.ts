// Pillow's BILINEAR `Image.resize` of 8-bit RGB, bit for bit (model-spec.md §2.3; Pillow's
// libImaging/Resample.c): antialiased triangle filter, 22-bit fixed-point weights, horizontal pass
// first into a rounded uint8 intermediate, then the vertical pass; an unchanged side is not touched.
// sharp/libvips, canvas or GPU bilinear all give different pixels, and the model notices.
//
// Layout everywhere: interleaved RGB, row-major, [height, width, 3] uint8.

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);
/** An accumulator at or above this clips to 255 (Pillow's clip8). */
const CLIP_HIGH = 1 << (PRECISION_BITS + 8);
const CHANNELS = 3;

/** Per output position: first input index, tap count, and `ksize` integer weights (zero-padded). */
export interface Coefficients {
  ksize: number;
  /** [outSize] first input index read */
  lo: Int32Array;
  /** [outSize] number of taps */
  n: Int32Array;
  /** [outSize, ksize] weights scaled by 2^22 */
  k: Int32Array;
}

/** Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1), in f64. */
export function bilinearCoefficients(inSize: number, outSize: number): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1.0);
  const support = 1.0 * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const ss = 1.0 / filterScale;
  const lo = new Int32Array(outSize);
  const n = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  for (let o = 0; o < outSize; o++) {
    const center = (o + 0.5) * scale;
    // (int) casts in C truncate toward zero
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const taps = xmax - xmin;
    let sum = 0.0;
    for (let x = 0; x < taps; x++) {
      const t = Math.abs((x + xmin - center + 0.5) * ss);
      const v = t < 1.0 ? 1.0 - t : 0.0;
      w[x] = v;
      sum += v;
    }
    for (let x = 0; x < taps; x++) {
      const v = sum !== 0.0 ? w[x] / sum : w[x];
      // bilinear weights are never negative, so Pillow's (int)(0.5 + v·2^22) branch applies
      k[o * ksize + x] = Math.trunc(0.5 + v * (1 << PRECISION_BITS));
    }
    lo[o] = xmin;
    n[o] = taps;
  }
  return { ksize, lo, n, k };
}

function clip8(acc: number): number {
  if (acc >= CLIP_HIGH) return 255;
  if (acc <= 0) return 0;
  return acc >> PRECISION_BITS;
}

/**
 * Vertical tap tables padded to a fixed count T (3 or 5, the common cases: upscaling reads at
 * most 3 rows, shrinking by up to 2× at most 5), so the inner loop can be unrolled (2× faster in
 * V8; the same trick gains nothing for the horizontal pass). Padding taps get weight 0 and an
 * index clamped into range, so they add exactly nothing.
 */
function paddedTaps(c: Coefficients, inSize: number, T: number): { idx: Int32Array; w: Int32Array } {
  const out = c.lo.length;
  const idx = new Int32Array(out * T);
  const w = new Int32Array(out * T);
  for (let o = 0; o < out; o++) {
    for (let t = 0; t < T; t++) {
      idx[o * T + t] = Math.min(c.lo[o] + t, inSize - 1);
      w[o * T + t] = t < c.n[o] ? c.k[o * c.ksize + t] : 0;
    }
  }
  return { idx, w };
}

function maxTaps(c: Coefficients): number {
  let m = 0;
  for (let i = 0; i < c.n.length; i++) if (c.n[i] > m) m = c.n[i];
  return m;
}

/** Horizontal pass over source rows [row0, row0 + rows) → [rows, outW, 3]. */
function resampleHorizontal(
  src: Uint8Array,
  srcW: number,
  row0: number,
  rows: number,
  outW: number,
  c: Coefficients,
): Uint8Array {
  const out = new Uint8Array(rows * outW * CHANNELS);
  const srcStride = srcW * CHANNELS;
  const { ksize, lo, n, k } = c;
  for (let y = 0; y < rows; y++) {
    const srcRow = (row0 + y) * srcStride;
    let o = y * outW * CHANNELS;
    for (let x = 0; x < outW; x++) {
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      let p = srcRow + lo[x] * CHANNELS;
      const kb = x * ksize;
      const taps = n[x];
      for (let t = 0; t < taps; t++) {
        const kv = k[kb + t];
        // sums stay below 2^31 (255·(2^22 + taps/2) + 2^21), so int32 arithmetic is exact
        s0 = (s0 + Math.imul(src[p], kv)) | 0;
        s1 = (s1 + Math.imul(src[p + 1], kv)) | 0;
        s2 = (s2 + Math.imul(src[p + 2], kv)) | 0;
        p += CHANNELS;
      }
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
      o += CHANNELS;
    }
  }
  return out;
}

/**
 * Vertical pass over [inH, width, 3]; `rowShift` is subtracted from the coefficients' first rows
 * (the horizontal pass kept only the rows this pass reads).
 */
function resampleVertical(src: Uint8Array, width: number, inH: number, outH: number, c: Coefficients, rowShift: number): Uint8Array {
  const rowLen = width * CHANNELS;
  const out = new Uint8Array(outH * rowLen);
  const m = maxTaps(c);
  if (m <= 5) {
    const T = m <= 3 ? 3 : 5;
    const shifted = { ...c, lo: c.lo.map((v) => v - rowShift) };
    const { idx, w } = paddedTaps(shifted, inH, T);
    for (let y = 0; y < outH; y++) {
      const j = y * T;
      const ob = y * rowLen;
      const r0 = idx[j] * rowLen, r1 = idx[j + 1] * rowLen, r2 = idx[j + 2] * rowLen;
      const k0 = w[j], k1 = w[j + 1], k2 = w[j + 2];
      if (T === 3) {
        for (let i = 0; i < rowLen; i++) {
          out[ob + i] = clip8((HALF + Math.imul(src[r0 + i], k0) + Math.imul(src[r1 + i], k1) + Math.imul(src[r2 + i], k2)) | 0);
        }
      } else {
        const r3 = idx[j + 3] * rowLen, r4 = idx[j + 4] * rowLen;
        const k3 = w[j + 3], k4 = w[j + 4];
        for (let i = 0; i < rowLen; i++) {
          out[ob + i] = clip8(
            (HALF + Math.imul(src[r0 + i], k0) + Math.imul(src[r1 + i], k1) + Math.imul(src[r2 + i], k2) +
              Math.imul(src[r3 + i], k3) + Math.imul(src[r4 + i], k4)) | 0,
          );
        }
      }
    }
    return out;
  }
  // Strong shrinking (> 2×): accumulate a whole output row tap by tap so every read is sequential.
  const acc = new Int32Array(rowLen);
  const { ksize, lo, n, k } = c;
  for (let y = 0; y < outH; y++) {
    acc.fill(HALF);
    const first = lo[y] - rowShift;
    const taps = n[y];
    const kb = y * ksize;
    for (let t = 0; t < taps; t++) {
      const kv = k[kb + t];
      const base = (first + t) * rowLen;
      for (let i = 0; i < rowLen; i++) acc[i] = (acc[i] + Math.imul(src[base + i], kv)) | 0;
    }
    const ob = y * rowLen;
    for (let i = 0; i < rowLen; i++) out[ob + i] = clip8(acc[i]);
  }
  return out;
}

/**
 * Resize `src` ([srcH, srcW, 3] uint8) to [dstH, dstW, 3] exactly as Pillow's
 * `Image.resize((dstW, dstH), Image.BILINEAR)` does for an RGB image. Returns `src` itself when
 * the size does not change (Pillow copies; the pixels are the same).
 */
export function resizeBilinearRgb(
  src: Uint8Array,
  srcW: number,
  srcH: number,
  dstW: number,
  dstH: number,
): Uint8Array {
  if (src.length !== srcW * srcH * CHANNELS) {
    throw new RangeError(`resizeBilinearRgb: expected ${srcW * srcH * CHANNELS} bytes for ${srcW}×${srcH} RGB, got ${src.length}`);
  }
  if (!(dstW > 0 && dstH > 0 && Number.isInteger(dstW) && Number.isInteger(dstH))) {
    throw new RangeError(`resizeBilinearRgb: bad target size ${dstW}×${dstH}`);
  }
  const needH = dstW !== srcW;
  const needV = dstH !== srcH;
  if (!needH && !needV) return src;
  if (!needH) return resampleVertical(src, srcW, srcH, dstH, bilinearCoefficients(srcH, dstH), 0);
  const ch = bilinearCoefficients(srcW, dstW);
  if (!needV) return resampleHorizontal(src, srcW, 0, srcH, dstW, ch);
  // Only the source rows the vertical pass reads go through the horizontal pass.
  const cv = bilinearCoefficients(srcH, dstH);
  const first = cv.lo[0];
  const last = cv.lo[dstH - 1] + cv.n[dstH - 1];
  const tmp = resampleHorizontal(src, srcW, first, last - first, dstW, ch);
  return resampleVertical(tmp, dstW, last - first, dstH, cv, first);
}

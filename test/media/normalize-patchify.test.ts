// Normalisation (model-spec.md §2.4) and merge-cell patch order (§2.5).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { NORMALIZE_LUT, normalize, normalizeValue } from '../../src/media/normalize.js';
import { PATCH_DIM, patchify } from '../../src/media/patchify.js';

/** Round-to-nearest-even f32 → bf16 bits, as the engine casts its pixel input. */
function bf16(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return (u + 0x7fff + ((u >>> 16) & 1)) >>> 16;
}

test('LUT: endpoints, midpoint, monotone, spec formula', () => {
  assert.is(NORMALIZE_LUT[0], -1);
  assert.is(NORMALIZE_LUT[255], 1);
  assert.is(NORMALIZE_LUT.length, 256);
  for (let u = 1; u < 256; u++) assert.ok(NORMALIZE_LUT[u] > NORMALIZE_LUT[u - 1]);
  // v = f32(u·0.00392156862745098) then f32(f32(v − 0.5)/0.5): u = 191 lands one f32 ulp above the
  // correctly rounded (191 − 127.5)/127.5
  assert.is(normalizeValue(191), 0.49803924560546875);
  assert.is(Math.fround((191 - 127.5) / 127.5), 0.49803921580314636);
  assert.equal(Array.from(normalize(new Uint8Array([0, 191, 255]))), [-1, 0.49803924560546875, 1]);
});

test("after the engine's bf16 cast, the spec formula equals the fixture processor's f32((u − 127.5)/127.5)", () => {
  let f32Differences = 0;
  for (let u = 0; u < 256; u++) {
    const fused = Math.fround((u - 127.5) / 127.5);
    if (fused !== NORMALIZE_LUT[u]) f32Differences++;
    assert.is(bf16(NORMALIZE_LUT[u]), bf16(fused), `level ${u}`);
  }
  assert.is(f32Differences, 128); // one ulp apart in f32 for half the levels
});

test('patchify: rows in merge-cell order, columns channel-major (spec §2.5 loops)', () => {
  // 2 frames of 64×32 (W×H): gh = 2, gw = 4 → 8 patches per frame; values encode (t, y, x, ch)
  const W = 64, H = 32, T = 2;
  const frames = Array.from({ length: T }, (_, t) => {
    const f = new Float32Array(H * W * 3);
    for (let y = 0; y < H; y++) for (let x = 0; x < W; x++) for (let ch = 0; ch < 3; ch++) f[(y * W + x) * 3 + ch] = ((t * H + y) * W + x) * 3 + ch;
    return f;
  });
  const { pixels, grid } = patchify(frames, W, H);
  assert.equal(grid, [2, 2, 4]);
  assert.is(pixels.length, T * 8 * PATCH_DIM);
  const [gt, gh, gw] = grid;
  for (let t = 0; t < gt; t++) for (let by = 0; by < gh / 2; by++) for (let bx = 0; bx < gw / 2; bx++)
    for (let sy = 0; sy < 2; sy++) for (let sx = 0; sx < 2; sx++) {
      const r = ((t * (gh / 2) + by) * (gw / 2) + bx) * 4 + sy * 2 + sx;
      for (let ch = 0; ch < 3; ch++) for (let ky = 0; ky < 16; ky++) for (let kx = 0; kx < 16; kx++) {
        const c = ch * 256 + ky * 16 + kx;
        const y = (2 * by + sy) * 16 + ky, x = (2 * bx + sx) * 16 + kx;
        const want = ((t * H + y) * W + x) * 3 + ch;
        if (pixels[r * PATCH_DIM + c] !== want) assert.unreachable(`row ${r} col ${c}: ${pixels[r * PATCH_DIM + c]} ≠ ${want}`);
      }
    }
});

test('patchify: uint8 input is normalised on the way', () => {
  const img = new Uint8Array(32 * 32 * 3).map((_, i) => i % 256);
  const a = patchify([img], 32, 32).pixels;
  const b = patchify([normalize(img)], 32, 32).pixels;
  assert.ok(a.every((v, i) => v === b[i]));
});

test('patchify: rejects sizes that are not multiples of 32 and mismatched frames', () => {
  assert.throws(() => patchify([new Uint8Array(16 * 32 * 3)], 16, 32), RangeError);
  assert.throws(() => patchify([new Uint8Array(10)], 32, 32), RangeError);
  assert.throws(() => patchify([], 32, 32), RangeError);
});

test.run();

// Pillow-exact BILINEAR resize (model-spec.md §2.3). Golden SHA-256 digests below are of Pillow
// 10.3's `Image.fromarray(src).resize((dw, dh), Image.BILINEAR)` on the same generated inputs
// (computed once with Pillow; the fixture test covers real images against the reference).
import { createHash } from 'node:crypto';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { bilinearCoefficients, resizeBilinearRgb } from '../../src/media/pil-bilinear.js';

/** Deterministic [h, w, 3] test image: gradients + xorshift noise + 20 % pure black/white. */
function pattern(w: number, h: number, seed: number): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < out.length; i++) {
    s ^= s << 13; s >>>= 0; s ^= s >>> 17; s ^= s << 5; s >>>= 0;
    const x = ((i / 3) | 0) % w;
    const y = (i / 3 / w) | 0;
    const r = s & 255;
    out[i] = r < 26 ? 0 : r < 52 ? 255 : (((x * 255) / Math.max(1, w - 1) + ((y * 97) % 256) + ((s >>> 8) % 64)) % 256) | 0;
  }
  return out;
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

// [srcW, srcH, dstW, dstH, Pillow's digest]
const GOLDEN: [number, number, number, number, string][] = [
  [37, 23, 64, 96, 'f8e068f5c2957da22eb8fff15b0167352bad7ec453880744d4bdf425551d5b4c'], // upscale both
  [300, 200, 64, 32, 'e9bd588123e322038d47fb9cce803ddc3f11fc12514c102b10ddde788f1abb65'], // > 2× shrink: generic paths
  [300, 200, 300, 96, 'd452061f5ee2d500378f49734e1cee4d74a4f2ecc94467f44841d5428672dad8'], // vertical only
  [300, 200, 160, 200, 'be099cbdf41ff9948f728c44522999d65226251c0b3d3787d74895147d335c8d'], // horizontal only
  [1000, 750, 512, 384, 'b1516e30e291d94a388d23f2f238cdf52542a174569dd36da07f21293bf10dce'], // ~2× shrink: 5 taps
  [7, 5, 7, 900, 'c5bbbc79e2bb6a5e47c32493981e324d9f6058b5de5587d33e5ebaebf0e3c57f'], // huge vertical upscale
  [1, 1, 32, 32, 'dbac8de44470658b73b7869498774f92e1680646b01ab6ad492e7d4bb22cf41d'],
  [640, 1, 3, 1, '1784771d85aa4193cc1379833de5deb53ddef57da95d58cb38c933b7c352951c'],
  [333, 777, 96, 448, '42b899b11ec29833b65e756bdfbb2b097fe996f642b17668bfcc7a719a659465'], // mixed ratios
];

for (const [i, [sw, sh, dw, dh, digest]] of GOLDEN.entries()) {
  test(`${sw}×${sh} → ${dw}×${dh} equals Pillow bit for bit`, () => {
    const out = resizeBilinearRgb(pattern(sw, sh, i + 1), sw, sh, dw, dh);
    assert.is(out.length, dw * dh * 3);
    assert.is(sha256(out), digest);
  });
}

test('unchanged size is the identity', () => {
  const src = pattern(50, 40, 9);
  assert.is(resizeBilinearRgb(src, 50, 40, 50, 40), src);
});

test('coefficients: 22-bit weights summing to ~2^22, Pillow bounds', () => {
  const c = bilinearCoefficients(4000, 2048);
  assert.is(c.ksize, 5); // ceil(1.953)·2 + 1
  for (let o = 0; o < 2048; o++) {
    let sum = 0;
    for (let t = 0; t < c.n[o]; t++) sum += c.k[o * c.ksize + t];
    assert.ok(Math.abs(sum - (1 << 22)) <= c.n[o], `output ${o}: Σw = ${sum}`);
    assert.ok(c.lo[o] >= 0 && c.lo[o] + c.n[o] <= 4000);
  }
  // upscaling 2 → 4: centres 0.25, 0.75, 1.25, 1.75; taps [trunc(c − 0.5), min(trunc(c + 1.5), 2))
  const u = bilinearCoefficients(2, 4);
  assert.equal(Array.from(u.lo), [0, 0, 0, 1]);
  assert.equal(Array.from(u.n), [1, 2, 2, 1]);
  // centre 0.75: weights tri(0.25)=0.75, tri(0.75)=0.25 → ·2^22
  assert.equal(Array.from(u.k.subarray(u.ksize, u.ksize + 2)), [3145728, 1048576]);
});

test('a flat image stays flat at every scale', () => {
  const src = new Uint8Array(123 * 77 * 3).fill(200);
  for (const [w, h] of [[60, 30], [500, 300], [123, 5], [7, 77]]) {
    const out = resizeBilinearRgb(src, 123, 77, w, h);
    assert.ok(out.every((v) => v === 200), `${w}×${h}`);
  }
});

test('bad arguments throw', () => {
  assert.throws(() => resizeBilinearRgb(new Uint8Array(10), 2, 2, 4, 4), RangeError);
  assert.throws(() => resizeBilinearRgb(new Uint8Array(12), 2, 2, 0, 4), RangeError);
});

/** [h, w, 3] image whose value depends on x only (rows: false) or on y only (rows: true). */
function stripes(w: number, h: number, alongY: boolean): Uint8Array {
  const out = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const t = alongY ? y : x;
      out.set([(t * 37) % 256, (t * 11 + 90) % 256, t % 2 ? 255 : 0], (y * w + x) * 3);
    }
  }
  return out;
}

// The 12-megapixel photo case (4000×3000 → 2048×1536, 5 taps each way). Bilinear is separable and
// Pillow's fixed-point pass leaves a constant line constant (its weights sum to 2^22 ± taps, well
// under half a level at 8 bits), so an image that varies along x only must resize to rows that all
// equal the 1-row resize (checked against Pillow above for 640×1 → 3×1), and likewise along y.
// How fast it runs is for the benchmark to measure, not for a unit test.
test('4000×3000 → 2048×1536: x-only and y-only images give the 1-D resize on every line', () => {
  const [sw, sh, dw, dh] = [4000, 3000, 2048, 1536];
  const across = resizeBilinearRgb(stripes(sw, sh, false), sw, sh, dw, dh);
  assert.is(across.length, dw * dh * 3);
  const row = resizeBilinearRgb(stripes(sw, 1, false), sw, 1, dw, 1);
  for (let y = 0; y < dh; y++) {
    const line = across.subarray(y * dw * 3, (y + 1) * dw * 3);
    if (!line.every((v, i) => v === row[i])) assert.unreachable(`row ${y} differs from the 1-row resize`);
  }
  const down = resizeBilinearRgb(stripes(sw, sh, true), sw, sh, dw, dh);
  const column = resizeBilinearRgb(stripes(1, sh, true), 1, sh, 1, dh);
  for (let y = 0; y < dh; y++) {
    const want = column.subarray(y * 3, y * 3 + 3);
    for (let x = 0; x < dw; x++) {
      const o = (y * dw + x) * 3;
      if (down[o] !== want[0] || down[o + 1] !== want[1] || down[o + 2] !== want[2]) assert.unreachable(`pixel ${x},${y} differs from the 1-column resize`);
    }
  }
  // the lines really were resampled (not copied or left flat)
  assert.ok(new Set(row).size > 100, 'the 1-row resize has varied values');
});

test.run();

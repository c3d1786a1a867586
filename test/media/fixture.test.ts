// The media pipeline against the reference fixture (test/fixtures/tiny-ovis2.5): decode with sharp +
// smart_resize + Pillow-exact bilinear must give the reference's `NAME.resized.K` pixels, and
// normalise + patchify must give its `pixel_values`.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { decodeImage } from '../../src/media/decode-image.js';
import { prepareImage } from '../../src/media/image.js';
import { normalize } from '../../src/media/normalize.js';
import { patchify } from '../../src/media/patchify.js';
import { resizeBilinearRgb } from '../../src/media/pil-bilinear.js';
import { smartResize } from '../../src/media/smart-resize.js';
import { readSafetensors, toNumbers } from '../helpers/safetensors.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-ovis2.5');
const expected = readSafetensors(join(FIXTURE, 'expected.safetensors'));
const cases = (JSON.parse(readFileSync(join(FIXTURE, 'cases.json'), 'utf8')) as {
  cases: { name: string; images: string[]; video: string[]; min_pixels: number; max_pixels: number }[];
}).cases;

function tensor(key: string) {
  const t = expected.get(key);
  if (!t) throw new Error(`fixture has no ${key}`);
  return t;
}

/** Tolerance for resized pixels: ideally exact; allowed ≥ 99.9 % equal and none more than 1 level off. */
function compareResized(got: Uint8Array, want: Uint8Array, what: string): number {
  assert.is(got.length, want.length, `${what}: size`);
  let diff = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d > 1) assert.unreachable(`${what}: value ${i} is ${got[i]}, reference ${want[i]}`);
    if (d) diff++;
  }
  assert.ok(diff / got.length <= 0.001, `${what}: ${diff} of ${got.length} values differ`);
  return diff;
}

for (const c of cases) {
  const files = c.images.length > 0 ? c.images : c.video;
  if (files.length === 0) continue;
  test(`${c.name}: decode + smart_resize + Pillow bilinear equals NAME.resized.K exactly`, async () => {
    for (const [k, file] of files.entries()) {
      const img = await decodeImage(join(FIXTURE, 'inputs', file));
      // video frames take frame 0's size (all fixture frames share it)
      const size = smartResize(img.height, img.width, c.min_pixels, c.max_pixels);
      const want = tensor(`${c.name}.resized.${k}`);
      assert.equal(want.shape, [size.height, size.width, 3], `${c.name}.resized.${k} shape`);
      const got = resizeBilinearRgb(img.data, img.width, img.height, size.width, size.height);
      const diff = compareResized(got, want.data as Uint8Array, `${c.name}.resized.${k} (${file})`);
      assert.is(diff, 0, `${c.name}.resized.${k}: exact`);
    }
  });

  if (c.images.length > 0) {
    test(`${c.name}: prepareImage grids equal NAME.grid_thws`, async () => {
      const grids: number[] = [];
      for (const file of c.images) {
        const p = await prepareImage(join(FIXTURE, 'inputs', file), { minPixels: c.min_pixels, maxPixels: c.max_pixels });
        assert.is(p.pixels.length, p.grid[0] * p.grid[1] * p.grid[2] * 768);
        grids.push(...p.grid);
      }
      assert.equal(grids, toNumbers(tensor(`${c.name}.grid_thws`)));
    });
  }
}

test('two_images: patchify(normalize(resized)) equals pixel_values up to the reference rounding quirks', () => {
  const want = tensor('two_images.pixel_values').data as Float32Array;
  const parts: Float32Array[] = [];
  for (const k of [0, 1]) {
    const r = tensor(`two_images.resized.${k}`);
    const [h, w] = r.shape;
    parts.push(patchify([normalize(r.data as Uint8Array)], w, h).pixels);
    // the fused uint8 path gives the same values as normalise-then-patchify
    const fused = patchify([r.data as Uint8Array], w, h).pixels;
    assert.ok(fused.every((v, i) => v === parts[parts.length - 1][i]), 'fused patchify differs');
  }
  const got = new Float32Array(parts[0].length + parts[1].length);
  got.set(parts[0]);
  got.set(parts[1], parts[0].length);
  assert.is(got.length, want.length);
  // Two known differences, both invisible to the engine's bf16 input (see normalize.test.ts):
  // 1. The fixture's processor (transformers 5.x) computes f32((u − 127.5) / 127.5), one f32 ulp
  //    away from model-spec.md §2.4's two-rounding formula for 128 of the 256 levels.
  // 2. The README: its pixel_values differ from resized.* by exactly one level (2/255 after
  //    normalisation) in 0.013 % of values (121 of 912,384 = 0.01326 %). Allowed: anything that
  //    rounds to 0.013 %, i.e. under 0.0135 %.
  const level = 2 / 255;
  let oneLevel = 0;
  let oneUlp = 0;
  for (let i = 0; i < got.length; i++) {
    const d = Math.abs(got[i] - want[i]);
    if (d === 0) continue;
    if (d <= 2 ** -24) {
      oneUlp++; // values lie in [-1, 1], so one ulp is at most 2^-24
      continue;
    }
    assert.ok(Math.abs(d - level) < 1e-6, `value ${i}: ${got[i]} vs ${want[i]}`);
    oneLevel++;
  }
  assert.ok(oneLevel < got.length * 0.000135, `${oneLevel} one-level differences of ${got.length}`);
  assert.ok(oneUlp > 0); // documents that quirk 1 is real; if it ever vanishes, revisit normalize.ts
});

test('prepareImage on the fixture photo: timings are reported, resized size is smart_resize', async () => {
  const p = await prepareImage(join(FIXTURE, 'inputs/photo.jpg'), { minPixels: 200704, maxPixels: 3211264 });
  assert.equal(p.resized, { height: 480, width: 640 });
  assert.equal(p.original, { height: 480, width: 640 });
  assert.equal(p.grid, [1, 30, 40]);
  for (const v of Object.values(p.timings)) assert.ok(v >= 0);
});

test.run();

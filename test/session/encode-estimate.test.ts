// The encode estimate's cost model, the --max-pixels suggestion and the running clock, on the
// released 2B shapes with injected rates (the engine measures the real ones at load; the CLI tests
// in test/cli/ask-encode-estimate.test.ts run them end to end).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { smartResize } from '../../src/media/smart-resize.js';
import {
  EncodeClock, estimateEncodeMs, headShare, longEncodeNote, suggestMaxPixels, visionCostOf, type VisionCost,
} from '../../src/session/encode-estimate.js';
import type { ModelInfo } from '../../src/protocol/index.js';

// Ovis2.5-2B (model-spec.md §4–5): D 1152, I 4304, 27 layers, visual vocabulary 65536, LLM hidden 2048.
const twoB = (gemmGflops: number, attentionGflops: number): VisionCost => ({
  layers: 27, hidden: 1152, intermediate: 4304, patch: 16, stride: 2, visualVocab: 65536, llmHidden: 2048, gemmGflops, attentionGflops,
});

test('2B at 448² (784 patches): 815.5 GFLOP of GEMMs and head, 76.5 GFLOP of attention, each at its rate', () => {
  // 27·2·784·(4·1152² + 2·1152·4304) + 2·196·4608·65532 + 2·196·65536·2048 = 815,544,647,680
  // 27·4·784²·1152 = 76,473,040,896
  assert.ok(Math.abs(estimateEncodeMs(twoB(100, 1e12), [[1, 28, 28]]) - 8155.44647680) < 1e-3);
  assert.ok(Math.abs(estimateEncodeMs(twoB(1e12, 50), [[1, 28, 28]]) - 1529.46081792) < 1e-3);
});

test('attention grows with the square of a frame, a video costs its frames one by one', () => {
  const c = twoB(1e12, 10);
  const one = estimateEncodeMs(c, [[1, 28, 28]]);
  assert.ok(Math.abs(estimateEncodeMs(c, [[1, 56, 56]]) / one - 16) < 1e-6);
  assert.ok(Math.abs(estimateEncodeMs(c, [[8, 28, 28]]) / one - 8) < 1e-6);
  assert.ok(Math.abs(estimateEncodeMs(c, [[1, 28, 28], [1, 28, 28]]) / one - 2) < 1e-6);
});

test('the suggestion is the largest (32k)² budget whose resized image is estimated under the target', () => {
  const c = twoB(130, 60);
  const photo = { width: 4032, height: 3024 };
  const size = smartResize(photo.height, photo.width, 448 * 448, 1792 * 1792);
  const media = [{ kind: 'image' as const, original: photo, grid: [1, size.height / 16, size.width / 16] }];
  const now = estimateEncodeMs(c, media.map((m) => m.grid));
  assert.ok(now > 60_000, `a 12-megapixel photo at the default budget is long (${now} ms)`);
  const s = suggestMaxPixels(c, media, 448 * 448, 10_000)!;
  assert.ok(s, 'a suggestion');
  assert.is(s.maxPixels, s.side * s.side);
  assert.is(s.side % 32, 0);
  const at = (side: number) => {
    const r = smartResize(photo.height, photo.width, Math.min(448 * 448, side * side), side * side);
    return estimateEncodeMs(c, [[1, r.height / 16, r.width / 16]]);
  };
  assert.ok(at(s.side) <= 10_000 && Math.abs(at(s.side) - s.estimateMs) < 1e-9, `${s.side}: ${at(s.side)} ms`);
  assert.ok(at(s.side + 32) > 10_000, `the next budget up (${s.side + 32}²) is over the target: ${at(s.side + 32)} ms`);
});

test('no suggestion when the media are already fast', () => {
  const c = twoB(130, 60);
  assert.is(suggestMaxPixels(c, [{ kind: 'image', original: { width: 448, height: 448 }, grid: [1, 28, 28] }], 448 * 448, 10_000), undefined);
});

test('a video keeps its frames: the budget is per frame', () => {
  const c = twoB(130, 60);
  const frame = { width: 1280, height: 720 };
  const r = smartResize(720, 1280, 448 * 448, 896 * 896);
  const s = suggestMaxPixels(c, [{ kind: 'video', original: frame, grid: [8, r.height / 16, r.width / 16] }], 448 * 448, 10_000)!;
  const small = smartResize(720, 1280, Math.min(448 * 448, s.maxPixels), s.maxPixels);
  assert.ok(estimateEncodeMs(c, [[8, small.height / 16, small.width / 16]]) <= 10_000);
});

test('the note says the estimate and the flag', () => {
  assert.is(
    longEncodeNote('the image', 12544, 150_000, { maxPixels: 802816, side: 896, estimateMs: 9_500 }),
    'encoding the image (12,544 patches) will take about 2.5 min on this CPU; --max-pixels 802816 (896·896, fewer details) would take about 9.5 s',
  );
  assert.is(longEncodeNote('2 images', 1568, 41_300, undefined), 'encoding 2 images (1,568 patches) will take about 41 s on this CPU');
});

test('the clock: the estimate until a layer is done, then the layers measured so far', () => {
  let t = 0;
  const clock = new EncodeClock(27_000, 27, 0, () => t);
  t = 500;
  assert.is(clock.remainingMs(), 26_500);
  assert.is(clock.describe(), '1% · ~27 s left');
  // Layer 1 took 2 s in the engine (twice the estimate's pace): 26 more layers at 2 s.
  t = 2100;
  clock.layer(1, 2000);
  assert.is(clock.remainingMs(), 52_000);
  assert.is(clock.afterFirstLayerMs, 54_000, 'the projection --verbose reports');
  clock.layer(1, 2000);
  assert.is(clock.remainingMs(), 52_000, 'a repeated event changes nothing');
  t = 3100;
  assert.is(clock.remainingMs(), 51_000);
  clock.layer(27, 54_000);
  assert.is(clock.remainingMs(), 0);
  assert.is(clock.describe(), '99% · almost done');
});

test('the clock keeps the head\'s share after the last layer, at the pace the layers ran', () => {
  let t = 0;
  const c = twoB(100, 100);
  const share = headShare(c, [[1, 28, 28]]);
  assert.ok(share > 0.05 && share < 0.3, `head share ${share}`);
  const clock = new EncodeClock(10_000, 27, share, () => t);
  const layersEstimate = 10_000 * (1 - share);
  t = 1000;
  clock.layer(27, layersEstimate); // the layers ran exactly as estimated
  assert.ok(Math.abs(clock.remainingMs() - 10_000 * share) < 1e-6);
});

test('no cost model without the engine\'s measured speed (a GPU, an older engine)', () => {
  const info = {
    model_type: 'ovis2_5', backend: 'cuda', device: 'gpu', visual_vocab: 65536, params: 0, weight_bytes: 0,
    llm: { hidden: 2048 }, vit: { hidden: 1152, intermediate: 4304, layers: 27, heads: 16, patch: 16, hidden_stride: 2 },
  } as unknown as ModelInfo;
  assert.is(visionCostOf(info), undefined);
  assert.equal(visionCostOf({ ...info, vision_speed: { gemm_gflops: 130, attention_gflops: 60 } }), twoB(130, 60));
});

test.run();

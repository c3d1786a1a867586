// smart_resize (model-spec.md §2.2): the spec's examples, Python's half-to-even rounding, and the
// rejection of empty results. Expected values were checked against the Python reference code.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.js';
import { IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, pyRound, smartResize } from '../../src/media/smart-resize.js';

const MIN = IMAGE_MIN_PIXELS;
const MAX = IMAGE_MAX_PIXELS;
const UNLIMITED = 1e12;

test('spec examples (W×H in → H×W out, 448² .. 1792²)', () => {
  assert.equal(smartResize(896, 896, MIN, MAX), { height: 896, width: 896 });
  assert.equal(smartResize(1080, 1920, MIN, MAX), { height: 1088, width: 1920 });
  assert.equal(smartResize(3000, 4000, MIN, MAX), { height: 1536, width: 2048 });
  assert.equal(smartResize(480, 640, MIN, MAX), { height: 480, width: 640 });
  assert.equal(smartResize(100, 100, MIN, MAX), { height: 448, width: 448 });
  // earlier HF revision's budget
  assert.equal(smartResize(1792, 1792, MIN, 1344 * 1792), { height: 1536, width: 1536 });
});

test('atoms of the spec examples (grid/4)', () => {
  const atoms = (h: number, w: number) => {
    const s = smartResize(h, w, MIN, MAX);
    return (s.height / 16) * (s.width / 16) / 4;
  };
  assert.is(atoms(896, 896), 784);
  assert.is(atoms(1080, 1920), 2040);
  assert.is(atoms(3000, 4000), 3072);
  assert.is(atoms(480, 640), 300);
  assert.is(atoms(100, 100), 196);
});

test('pyRound is round-half-to-even', () => {
  assert.is(pyRound(2.5), 2);
  assert.is(pyRound(3.5), 4);
  assert.is(pyRound(-2.5), -2);
  assert.is(pyRound(0.5), 0);
  assert.is(pyRound(1.5), 2);
  assert.is(pyRound(2.4999999999999996), 2);
  assert.is(pyRound(2.5000000000000004), 3);
  assert.is(pyRound(7), 7);
});

test('half-to-even in the multiple-of-32 rounding (Math.round would differ)', () => {
  // 80/32 = 2.5 → 2, 112/32 = 3.5 → 4
  assert.equal(smartResize(80, 112, 0, UNLIMITED), { height: 64, width: 128 });
  assert.equal(smartResize(112, 80, 0, UNLIMITED), { height: 128, width: 64 });
  // 48/32 = 1.5 → 2
  assert.equal(smartResize(48, 48, 0, UNLIMITED), { height: 64, width: 64 });
});

test('tiny side is scaled to 32 first (then rounded half to even)', () => {
  // 16×40 → 32×80 → 80/32 = 2.5 → 64
  assert.equal(smartResize(16, 40, 0, UNLIMITED), { height: 32, width: 64 });
  assert.equal(smartResize(40, 16, 0, UNLIMITED), { height: 64, width: 32 });
  // the tiny-side branch comes before the aspect clamp
  assert.equal(smartResize(1, 1000, MIN, MAX), { height: 32, width: 32000 });
});

test('extreme aspect ratio clamps the long side to 200×', () => {
  assert.equal(smartResize(40, 100000, MIN, MAX), { height: 32, width: 8000 });
});

test('an empty result is an InputError', () => {
  // 32×100000 → nominal 32×6400 → budget 50000 gives height floor(0.49)·32 = 0
  assert.throws(() => smartResize(32, 100000, 0, 50000), (e: unknown) => e instanceof InputError && /aspect ratio/.test((e as Error).message));
  assert.throws(() => smartResize(0, 10, MIN, MAX), (e: unknown) => e instanceof InputError);
  assert.throws(() => smartResize(10.5, 10, MIN, MAX), (e: unknown) => e instanceof InputError);
});

test('outputs are multiples of 32 within the budget (sweep)', () => {
  for (let h = 1; h < 3000; h += 37) {
    for (let w = 1; w < 3000; w += 53) {
      const s = smartResize(h, w, MIN, MAX);
      assert.is(s.height % 32, 0);
      assert.is(s.width % 32, 0);
      assert.ok(s.height * s.width <= MAX, `${h}×${w} → ${s.height}×${s.width}`);
    }
  }
});

test.run();

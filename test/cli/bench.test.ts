// `ovis bench` runs the engine's benchmark and reports every figure (values are not asserted:
// speed is recorded in docs/performance.md, never checked by a test).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, runOvis } from '../helpers/cli.js';

const args = ['bench', '--model', fixtureDir, '--images', '64', '--prompt-tokens', '16', '--decode-tokens', '4', '--repeats', '1', '--warmup', '0'];

test('bench --json reports vision, first token, prefill, decode, memory and floor', async () => {
  const r = await runOvis([...args, '--json']);
  assert.is(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.is(b.backend, 'cpu');
  assert.equal(b.images.map((i: any) => [i.side, i.patches]), [[64, 16]]);
  for (const v of [b.images[0].vision_encode_ms, b.images[0].time_to_first_token_ms, b.prefill.tokens_per_s, b.decode.ms_per_token, b.peak_memory_bytes, b.floor.decode_ms_per_token]) {
    assert.ok(Number.isFinite(v) && v > 0, String(v));
  }
  assert.is(b.prefill.tokens, 16);
  // 2 layers × (q, k, v, o, gate, up, down) + norms + the tied output matrix, in bf16 bytes.
  assert.is(b.floor.weight_bytes_per_token, 2 * (2 * (64 * 32 * 2 + 32 * 32 * 2 + 3 * 32 * 96 + 64 + 32) + 32 + 151936 * 32));
});

test('bench prints a table; bad arguments are usage errors', async () => {
  const r = await runOvis(args);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /decode \(context 32\)\s+[\d.]+ ms\/token/);
  const bad = await runOvis(['bench', '--synthetic', '3b']);
  assert.is(bad.code, 2);
  const none = await runOvis(['bench']);
  assert.is(none.code, 2);
});

test.run();

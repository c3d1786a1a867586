// `ovis bench` runs the engine's benchmark and reports every figure, each as soon as it is measured
// (values are not asserted: speed is recorded in docs/performance.md, never checked by a test).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execa } from 'execa';
import { locateEngine } from '../../src/engine/locate.js';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';

const tiny = ['--images', '64', '--prompt-tokens', '16', '--decode-tokens', '4', '--repeats', '1', '--warmup', '0'];
const args = ['bench', '--model', fixtureDir, ...tiny];

test('bench --json reports vision, first token, prefill, decode, memory and floor', async () => {
  const r = await runOvis([...args, '--json']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  const b = JSON.parse(r.stdout);
  assert.is(b.backend, 'cpu');
  assert.equal(b.images.map((i: any) => [i.side, i.patches]), [[64, 16]]);
  for (const v of [b.images[0].vision_encode_ms, b.images[0].time_to_first_token_ms, b.prefill.tokens_per_s, b.decode.ms_per_token, b.peak_memory_bytes, b.floor.decode_ms_per_token]) {
    assert.ok(Number.isFinite(v) && v > 0, String(v));
  }
  assert.is(b.prefill.tokens, 16);
  assert.equal([b.repeats, b.warmup, b.decode.tokens], [1, 0, 4]);
  // 2 layers × (q, k, v, o, gate, up, down) + norms + the tied output matrix, in bf16 bytes.
  assert.is(b.floor.weight_bytes_per_token, 2 * (2 * (64 * 32 * 2 + 32 * 32 * 2 + 3 * 32 * 96 + 64 + 32) + 32 + 151936 * 32));
});

test('the engine writes its plan, then one line per figure as measured, then the report', async () => {
  const r = await execa(locateEngine(), ['bench', '--model', fixtureDir, ...tiny, '--images', '64,96']);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.map((l) => l.type), ['plan', ...Array(9).fill('figure'), 'report']);
  assert.equal(lines.slice(1, -1).map((l) => l.figure), ['weights', 'vision_encode', 'time_to_first_token', 'vision_encode', 'time_to_first_token', 'prefill', 'decode', 'peak_memory', 'floor']);
  assert.equal(lines[0].images, [{ side: 64, patches: 16, positions: 30 }, { side: 96, patches: 36, positions: 35 }]);
  // The report holds the very figures the lines carried.
  const report = lines.at(-1);
  assert.is(report.images[1].time_to_first_token_ms, lines[5].ms);
  assert.is(report.decode.ms_per_token, lines[7].ms_per_token);
  assert.is(report.floor.decode_ms_per_token, lines[9].decode_ms_per_token);
  assert.is(report.weights, 'bf16');
});

test('bench prints each row while the rest is still being measured', async () => {
  // The floor comes last, after a memory bandwidth test of about a second: the rows before it must
  // reach stdout first, in chunks of their own (a table printed at the end arrives in one piece).
  const chunks: string[] = [];
  const r = await runOvis(args, { onStdout: (c) => chunks.push(c) });
  assert.is(r.code, 0, r.stderr);
  const firstRow = chunks.findIndex((c) => c.includes('vision encode 64²'));
  const floorRow = chunks.findIndex((c) => c.includes('decode floor'));
  assert.ok(firstRow >= 0 && floorRow > firstRow, `rows arrived in ${chunks.length} chunk(s): ${JSON.stringify(chunks)}`);
  assert.match(r.stdout, /^model {2,}\S/m);
  assert.match(r.stdout, /decode \(context 32\)\s+[\d.]+ ms\/token/);
  assert.match(r.stdout, /\(one timed run each, no warm-up; vision encode timed inside the first-token runs\)\n$/);
  // Every row's value starts in the same column.
  const columns = new Set(r.stdout.trim().split('\n').slice(0, -1).map((l) => l.search(/ {2}\S/)));
  assert.is(columns.size, 1, r.stdout);
});

test('bench --profile: per-stage time of one CPU pass, GFLOP/s and share of the measured FMA peak for compute stages', async () => {
  const r = await runOvis([...args, '--profile', '--json']);
  assert.is(r.code, 0, r.stderr);
  const p = JSON.parse(r.stdout).profile;
  assert.ok(p.fma_peak_gflop_per_s > 0, String(p.fma_peak_gflop_per_s));
  assert.ok(['avx512f', 'avx2+fma', 'scalar'].includes(p.fma_peak_isa), p.fma_peak_isa);
  assert.ok(['amx-bf16x3', 'avx512f', 'avx2+fma', 'portable'].includes(p.gemm_path), p.gemm_path);
  const names = p.stages.map((s: any) => s.stage);
  assert.equal(names, ['patchify', 'vit_gemm', 'vit_attention', 'vit_elementwise', 'head_gemm', 'head_norm_softmax', 'vte', 'prefill', 'decode', 'sampling']);
  const byName = Object.fromEntries(p.stages.map((s: any) => [s.stage, s]));
  // The fixture ViT has 2 layers: 6 products each (q, k, v, out, fc1, fc2); 4 decode steps.
  assert.equal([byName.vit_gemm.calls, byName.vit_attention.calls, byName.decode.calls, byName.sampling.calls], [12, 2, 4, 4]);
  for (const s of p.stages) assert.ok(s.ms >= 0 && s.calls >= 1, JSON.stringify(s));
  for (const name of ['patchify', 'vit_gemm', 'vit_attention', 'head_gemm', 'vte', 'prefill', 'decode']) {
    assert.ok(byName[name].gflop > 0 && byName[name].percent_of_peak > 0, JSON.stringify(byName[name]));
  }
  assert.is(byName.sampling.gflop, undefined, 'no FLOP rate for non-compute stages');

  const table = await runOvis([...args, '--profile']);
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /profile: FMA peak \(measured\)\s+\d+ GFLOP\/s/);
  assert.match(table.stdout, /\n {2}vit_gemm\s+[\d.]+ ms in 12 calls, \d+ GFLOP\/s = \d+ % of peak\n/);
  const columns = new Set(table.stdout.trim().split('\n').slice(0, -1).map((l) => l.search(/\S {2,}\S/) >= 0 ? l.replace(/^ +/, (m) => 'x'.repeat(m.length)).search(/ {2}\S/) : -1));
  assert.is(columns.size, 1, table.stdout);
});

test('bench --concurrency: each stream count decoding alone and beside a long prefill, through the scheduler', async () => {
  const r = await runOvis(['bench', '--model', fixtureDir, '--concurrency', '1,3', '--decode-tokens', '6', '--json']);
  assert.is(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.equal(b.concurrency, [1, 3]);
  assert.equal(b.concurrency_runs.map((c: any) => c.streams), [1, 3]);
  for (const c of b.concurrency_runs) {
    for (const run of [c.decode, c.with_prefill]) {
      for (const v of [run.tokens_per_s, run.ms_per_token_median, run.gap_p99_ms]) assert.ok(Number.isFinite(v) && v > 0, JSON.stringify(run));
      assert.ok(run.gap_p99_ms >= run.ms_per_token_median);
    }
    assert.is(c.with_prefill.prompt, 512);
    assert.ok(c.with_prefill.prefilled >= 0 && c.with_prefill.prefilled <= 512, JSON.stringify(c.with_prefill));
    // the ratios against issue 10's targets, from the figures beside them (one stream = the N = 1 run)
    assert.ok(Math.abs(c.ratios.aggregate_vs_one - c.decode.tokens_per_s / b.concurrency_runs[0].decode.tokens_per_s) < 1e-9, JSON.stringify(c));
    assert.ok(Math.abs(c.ratios.gap_p99_vs_step - c.with_prefill.gap_p99_ms / c.decode.ms_per_token_median) < 1e-9, JSON.stringify(c));
  }
  assert.is(b.concurrency_runs[0].ratios.aggregate_vs_one, 1);
  assert.equal(b.concurrency_targets, { aggregate_vs_one_at_8: 5, gap_p99_vs_step: 3 });
  // 3 streams of 6 tokens, their prompts prefilled in one step: gaps are timed from the step after
  // every stream has its first token, so 4 per stream
  assert.is(b.concurrency_runs[1].decode.gaps, 12);
  assert.is(b.decode, undefined, 'only the batching figures are measured');
  const table = await runOvis(['bench', '--model', fixtureDir, '--concurrency', '2', '--decode-tokens', '4']);
  assert.is(table.code, 0, table.stderr);
  assert.match(table.stdout, /^2 streams decoding\s+[\d.]+ tokens\/s in all, [\d.]+ ms\/token per stream \(p99 gap [\d.]+ ms\); [\d.]+× one stream$/m);
  assert.match(table.stdout, /^2 streams decoding \+ a 512-token prefill\s+[\d.]+ tokens\/s.*; p99 gap [\d.]+× the step; (prefill done|\d+ of 512 positions prefilled)$/m);
  const bad = await runOvis(['bench', '--model', fixtureDir, '--concurrency', '0,2']);
  assert.is(bad.code, 2);
  assert.match(bad.stderr, /--concurrency takes stream counts from 1 to 64/);
});

test('bench --weights int8: the report names the mode and its decode kernel; --quality compares with bf16', async () => {
  const r = await runOvis(['bench', '--model', fixtureDir, '--images', 'none', '--prompt-tokens', '16', '--decode-tokens', '2', '--repeats', '1', '--weights', 'int8', '--json']);
  assert.is(r.code, 0, r.stderr);
  const b = JSON.parse(r.stdout);
  assert.is(b.weights, 'int8');
  assert.ok(['avx512-vnni', 'avx2', 'scalar'].includes(b.weights_kernel), b.weights_kernel);
  assert.ok(b.decode.ms_per_token > 0);
  const q = await runOvis(['bench', '--model', fixtureDir, '--prompt-tokens', '16', '--decode-tokens', '4', '--weights', 'int8', '--quality']);
  assert.is(q.code, 0, q.stderr);
  // int8 on the fixture: cosine ≥ 0.999 (native/tests/quant_quality.rs measures the cases).
  const m = /quality vs bf16\s+last-position logits cosine (0\.\d+); greedy ids agree (\d)\/4 \(16-token prompt\)/.exec(q.stdout);
  assert.ok(m && Number(m[1]) >= 0.999, q.stdout);
  const bad = await runOvis(['bench', '--model', fixtureDir, '--quality']);
  assert.is(bad.code, 2);
  assert.ok(bad.stderr.includes('--quality compares quantized weights with bf16'), bad.stderr);
});

test('bench --help states the defaults and --full; bad arguments are usage errors', async () => {
  const help = await runOvis(['bench', '--help']);
  assert.match(help.stdout, /--full/);
  assert.match(help.stdout, /default 448 on the CPU/);
  const bad = await runOvis(['bench', '--synthetic', '3b']);
  assert.is(bad.code, 2);
  const none = await runOvis(['bench']);
  assert.is(none.code, 2);
});

test.run();

// `--lora` and `ovis lora merge` end to end through the real engine, on a random LoRA adapter this test
// writes for the fixture model (PEFT's layout: adapter_config.json, adapter_model.safetensors with
// base_model.model.<module>.lora_A/B.weight in f32). The merged directory must answer exactly as the
// adapter merged at load — same tokens and same log-probabilities, bit for bit — and not as the base.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { fixtureWeights, modelWith } from '../helpers/model-copy.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { input } from '../helpers/vision.js';

const tmp = tempDir('ovis-lora-');
test.after(() => removeTempDir(tmp));

/** LLM attention and MLP projections, a ViT projection, and the visual head. */
const MODULES = [
  'llm.model.layers.0.self_attn.q_proj',
  'llm.model.layers.1.self_attn.v_proj',
  'llm.model.layers.0.mlp.up_proj',
  'visual_tokenizer.vit.vision_model.encoder.layers.0.mlp.fc1',
  'visual_tokenizer.head.0',
];

/** Deterministic values in [−1, 1). */
function randoms(seed: number, n: number): Float32Array {
  let s = seed >>> 0 || 1;
  return Float32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 31 - 1;
  });
}

function writeSafetensors(path: string, tensors: Array<[string, number[], Float32Array]>): void {
  const header: Record<string, unknown> = {};
  let off = 0;
  for (const [name, shape, data] of tensors) {
    header[name] = { dtype: 'F32', shape, data_offsets: [off, off + data.byteLength] };
    off += data.byteLength;
  }
  const h = Buffer.from(JSON.stringify(header));
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(h.length));
  writeFileSync(path, Buffer.concat([len, h, ...tensors.map(([, , d]) => Buffer.from(d.buffer, d.byteOffset, d.byteLength))]));
}

/** An adapter of rank `r` for the fixture; `widen` adds columns to lora_A (an adapter for other shapes). */
function makeAdapter(name: string, opts: { r?: number; widen?: number; config?: Record<string, unknown> } = {}): string {
  const r = opts.r ?? 4;
  const dir = join(tmp, name);
  mkdirSync(dir);
  const { header } = fixtureWeights();
  const tensors: Array<[string, number[], Float32Array]> = [];
  MODULES.forEach((m, i) => {
    const [out, inn] = header[`${m}.weight`].shape as number[];
    const a = randoms(2 * i + 1, r * (inn + (opts.widen ?? 0)));
    // B sized so the merged change is comparable to the base weights.
    const b = randoms(2 * i + 2, out * r).map((x) => x * 0.05);
    tensors.push([`base_model.model.${m}.lora_A.weight`, [r, inn + (opts.widen ?? 0)], a], [`base_model.model.${m}.lora_B.weight`, [out, r], b]);
  });
  writeSafetensors(join(dir, 'adapter_model.safetensors'), tensors);
  const config = { peft_type: 'LORA', r, lora_alpha: 4 * r, use_rslora: false, use_dora: false, modules_to_save: null, bias: 'none', target_modules: ['q_proj', 'v_proj', 'up_proj', 'fc1'], ...opts.config };
  writeFileSync(join(dir, 'adapter_config.json'), JSON.stringify(config));
  return dir;
}

const ask = (model: string, extra: string[] = []) =>
  runOvis(['ask', '--model', model, ...extra, '--temperature', '0', '--max-new-tokens', '8', '--json', '--top-logprobs', '3', '--min-pixels', String(64 * 64), '--max-pixels', String(128 * 128), input('photo.jpg'), 'What is in the picture?']);

/** Token events (ids, text, log-probabilities) of a --json answer; timings dropped. */
function tokens(stdout: string): unknown[] {
  return stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'token');
}

test('--lora answers exactly as the directory `ovis lora merge` wrote, and not as the base model', async () => {
  const adapter = makeAdapter('adapter');
  const merged = join(tmp, 'merged');
  const m = await runOvis(['lora', 'merge', fixtureDir, adapter, merged]);
  assert.is(m.code, 0, m.stderr);
  assert.is(m.stdout, '', 'nothing on stdout');
  for (const f of ['config.json', 'tokenizer.json', 'model.safetensors']) assert.ok(existsSync(join(merged, f)), f);

  const [withLora, fromMerged, base] = await Promise.all([ask(fixtureDir, ['--lora', adapter]), ask(merged), ask(fixtureDir)]);
  for (const r of [withLora, fromMerged, base]) assert.is(r.code, 0, r.stderr);
  assert.equal(tokens(withLora.stdout), tokens(fromMerged.stdout));
  assert.is(tokens(withLora.stdout).length, 8);
  assert.not.equal(tokens(withLora.stdout), tokens(base.stdout), 'the adapter changes the answer');

  const info = await runOvis(['info', '--model', fixtureDir, '--lora', adapter]);
  assert.is(info.code, 0, info.stderr);
  assert.match(info.stdout, new RegExp(`adapter +LoRA ${adapter}: 5 modules, rank 4, alpha 16, scale 4, merged at load`));
  assert.match(info.stdout, /weights +safetensors: model\.safetensors; config model_type "ovis2_5"/);
});

test('an adapter made for a model of other shapes is refused, naming the module and the shapes', async () => {
  const adapter = makeAdapter('wide', { widen: 16 });
  const r = await ask(fixtureDir, ['--lora', adapter]);
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /module llm\.model\.layers\.0\.mlp\.up_proj: lora_A \[4, 48\] and lora_B \[96, 4\] do not fit the base weight .*\[96, 32\].*other shapes/);
  assert.is(r.stdout.split('\n').filter((l) => l.includes('"token"')).length, 0, 'no answer');
  const out = join(tmp, 'never');
  const m = await runOvis(['lora', 'merge', fixtureDir, adapter, out]);
  assert.is(m.code, 4, m.stderr);
  assert.match(m.stderr, /other shapes/);
});

test('refused adapter options are model errors naming the option', async () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['dora', { use_dora: true }, /use_dora .*not supported/],
    ['mts', { modules_to_save: ['lm_head'] }, /modules_to_save .*not supported/],
    ['rank-pattern', { rank_pattern: { q_proj: 8 } }, /rank_pattern .*not supported/],
    ['alpha-pattern', { alpha_pattern: { q_proj: 8 } }, /alpha_pattern .*not supported/],
  ];
  for (const [name, config, message] of cases) {
    const r = await runOvis(['info', '--model', fixtureDir, '--lora', makeAdapter(name, { config })]);
    assert.is(r.code, 4, `${name}: ${r.stderr}`);
    assert.match(r.stderr, message);
  }
});

test('an adapter given as --model is named as one', async () => {
  const r = await ask(makeAdapter('as-model'));
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /is a LoRA adapter, not a model: give the base model with --model and this directory with --lora/);
});

test('--lora without a model in bench is a usage error', async () => {
  const r = await runOvis(['bench', '--synthetic', '2b', '--lora', tmp]);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /--lora needs --model/);
});

test('a config of model_type "ovis" (upstream training output) runs, and ovis info says what it found', async () => {
  const config = JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));
  const dir = modelWith({ 'config.json': JSON.stringify({ ...config, model_type: 'ovis' }) });
  try {
    const info = await runOvis(['info', '--model', dir, '--json']);
    assert.is(info.code, 0, info.stderr);
    const out = JSON.parse(info.stdout);
    assert.equal(out.model.checkpoint, { format: 'safetensors', files: ['model.safetensors'], model_type: 'ovis' });
    const [a, b] = await Promise.all([ask(dir), ask(fixtureDir)]);
    assert.is(a.code, 0, a.stderr);
    assert.equal(tokens(a.stdout), tokens(b.stdout));
  } finally {
    removeTempDir(dir);
  }
});

test.run();

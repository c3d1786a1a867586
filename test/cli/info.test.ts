// `ovis info` through the real engine: with a model (--model or $OVIS_MODEL) it reports what the
// fixture's config.json and safetensors say; without one, only the engine. Text and --json.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { fixtureWeightTotals } from '../helpers/model-copy.js';

const config = JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));
const llm = config.llm_config;
const vit = config.vit_config;
const weights = fixtureWeightTotals();

const noModel = { OVIS_MODEL: undefined };

/** `key   value` lines of the text output. */
function fields(stdout: string): Record<string, string> {
  return Object.fromEntries(stdout.trimEnd().split('\n').map((l) => {
    const m = /^(\S+)\s+(.*)$/.exec(l);
    assert.ok(m, `not a "key value" line: ${JSON.stringify(l)}`);
    return [m[1], m[2]];
  }));
}

function checkModelJson(out: any) {
  assert.is(out.model_dir, fixtureDir);
  const m = out.model;
  assert.is(m.model_type, config.model_type);
  assert.equal(m.llm, {
    head_dim: llm.head_dim, heads: llm.num_attention_heads, hidden: llm.hidden_size, intermediate: llm.intermediate_size,
    kv_heads: llm.num_key_value_heads, layers: llm.num_hidden_layers, max_positions: llm.max_position_embeddings,
    tie_embeddings: llm.tie_word_embeddings, vocab: llm.vocab_size,
  });
  assert.equal(m.vit, {
    heads: vit.num_attention_heads, hidden: vit.hidden_size, hidden_stride: vit.hidden_stride, intermediate: vit.intermediate_size, layers: vit.num_hidden_layers, patch: vit.patch_size,
  });
  // Measured at load on the CPU (docs/protocol.md): both rates positive GFLOP/s.
  assert.ok(m.vision_speed.gemm_gflops > 0 && m.vision_speed.attention_gflops > 0, JSON.stringify(m.vision_speed));
  assert.is(m.visual_vocab, config.visual_vocab_size);
  assert.is(m.params, weights.params);
  assert.is(m.weight_bytes, weights.bytes);
  assert.is(m.backend, 'cpu');
  assert.is(out.engine.protocol, 1);
}

test('info --model --json: the architecture of config.json and the parameters of the weights', async () => {
  const r = await runOvis(['info', '--model', fixtureDir, '--json'], { env: noModel });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 1, 'one JSON object');
  checkModelJson(JSON.parse(r.stdout));
});

test('info --model: the same values as text', async () => {
  const r = await runOvis(['info', '--model', fixtureDir], { env: noModel });
  assert.is(r.code, 0, r.stderr);
  const f = fields(r.stdout);
  assert.is(f.model, fixtureDir);
  assert.is(f.architecture, `Ovis2.5 (${config.model_type}): SigLIP2-NaViT vision encoder + Qwen3 decoder`);
  assert.is(f.parameters, `${(weights.params / 1e6).toFixed(1)} M (${weights.params.toLocaleString('en-US')}), ${(weights.bytes / 2 ** 30).toFixed(2)} GiB of weights`);
  assert.is(f.decoder, `${llm.num_hidden_layers} layers, hidden ${llm.hidden_size}, ${llm.num_attention_heads} heads / ${llm.num_key_value_heads} KV heads × ${llm.head_dim}, MLP ${llm.intermediate_size}, vocabulary ${llm.vocab_size}, tied lm_head, context ${llm.max_position_embeddings}`);
  assert.is(f.vision, `${vit.num_hidden_layers} layers, hidden ${vit.hidden_size}, ${vit.num_attention_heads} heads, patch ${vit.patch_size}, merge ${vit.hidden_stride}×${vit.hidden_stride}; visual vocabulary ${config.visual_vocab_size}`);
  assert.match(f.engine, /^ovis-engine \d+\.\d+\.\d+ \(protocol 1\)$/);
  assert.is(f.backend, 'cpu');
  assert.ok(f.device.length > 0);
  assert.is(r.stderr, '', 'nothing on stderr without --verbose');
});

test('info with $OVIS_MODEL and no --model shows that model', async () => {
  const r = await runOvis(['info', '--json'], { env: { OVIS_MODEL: fixtureDir } });
  assert.is(r.code, 0, r.stderr);
  checkModelJson(JSON.parse(r.stdout));
});

test('info without a model shows the engine only (text and --json)', async () => {
  const [text, json] = await Promise.all([runOvis(['info'], { env: noModel }), runOvis(['info', '--json'], { env: noModel })]);
  assert.is(text.code, 0, text.stderr);
  assert.equal(Object.keys(fields(text.stdout)), ['engine', 'backend', 'device']);
  assert.match(fields(text.stdout).engine, /^ovis-engine \d+\.\d+\.\d+ \(protocol 1\)$/);
  assert.is(json.code, 0, json.stderr);
  const out = JSON.parse(json.stdout);
  assert.equal(Object.keys(out), ['engine']);
  assert.is(out.engine.protocol, 1);
  assert.is(out.engine.backend, 'cpu');
  assert.is(`ovis-engine ${out.engine.engine} (protocol 1)`, fields(text.stdout).engine);
});

test('info on a directory that is not a model is a model error', async () => {
  const r = await runOvis(['info', '--model', join(fixtureDir, 'inputs')], { env: noModel });
  assert.is(r.code, 4, r.stderr);
  assert.ok(r.stderr.includes('inputs'), r.stderr);
  assert.is(r.stdout, '');
});


/** The CPU's flags (Linux), to know which bf16 kernel the engine should pick. */
function cpuFlags(): Set<string> {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('flags'));
    return new Set((line ?? '').split(':')[1]?.trim().split(/\s+/) ?? []);
  } catch {
    return new Set();
  }
}

test('info --precision: the kernel path of each product family and why, for this CPU', async () => {
  const [json, text, exact] = await Promise.all([
    runOvis(['info', '--model', fixtureDir, '--precision', 'bf16', '--json'], { env: noModel }),
    runOvis(['info', '--model', fixtureDir, '--precision', 'bf16'], { env: noModel }),
    runOvis(['info', '--model', fixtureDir, '--json'], { env: noModel }),
  ]);
  for (const r of [json, text, exact]) assert.is(r.code, 0, r.stderr);
  const k = JSON.parse(json.stdout).model.kernels;
  const flags = cpuFlags();
  assert.is(k.precision, 'bf16');
  if (flags.has('avx512_bf16') && flags.has('amx_bf16')) {
    // AMX unless the kernel refused the tile permission, which the reason must then say.
    assert.ok(k.gemm === 'amx-bf16' || (k.gemm === 'avx512-bf16' && /refused/.test(k.bf16)), JSON.stringify(k));
  } else if (flags.has('avx512_bf16')) {
    assert.is(k.gemm, 'avx512-bf16');
  } else {
    assert.is(k.gemm, k.gemm_f32, 'no bf16 unit: the f32 path');
  }
  const e = JSON.parse(exact.stdout).model.kernels;
  assert.is(e.precision, 'f32');
  assert.is(e.gemm, e.gemm_f32, 'the default mode runs the exact f32 GEMM');
  const f = fields(text.stdout);
  assert.match(f.precision, /^bf16 /);
  assert.ok(f.kernels.startsWith(`GEMM ${k.gemm}`), f.kernels);
  assert.is(f.bf16, k.bf16);
});

test('info --precision with a value it does not know: a usage error naming the choices', async () => {
  const r = await runOvis(['info', '--model', fixtureDir, '--precision', 'fp8'], { env: noModel });
  assert.is(r.code, 2);
  assert.match(r.stderr, /f32, bf16/);
});

test('info --weights int8|int4: the engine quantizes the decoder and says how it decodes; bf16 is the default', async () => {
  const plain = JSON.parse((await runOvis(['info', '--model', fixtureDir, '--json'], { env: { ...noModel, OVIS_WEIGHTS: undefined } })).stdout).model;
  assert.is(plain.weights, 'bf16');
  for (const mode of ['int8', 'int4']) {
    const r = await runOvis(['info', '--model', fixtureDir, '--weights', mode, '--json'], { env: noModel });
    assert.is(r.code, 0, r.stderr);
    const m = JSON.parse(r.stdout).model;
    assert.is(m.weights, mode);
    assert.ok(['avx512-vnni', 'avx2', 'scalar'].includes(m.weights_kernel), m.weights_kernel);
    assert.ok(m.linear_bytes > 0, 'linear_bytes');
  }
  // $OVIS_WEIGHTS is the default; the text output has the decode line.
  const t = await runOvis(['info', '--model', fixtureDir], { env: { ...noModel, OVIS_WEIGHTS: 'int8' } });
  assert.is(t.code, 0, t.stderr);
  assert.match(fields(t.stdout).decode, /^int8, quantized at load \(per-group scales\); kernel (avx512-vnni|avx2|scalar), linear layers \d+\.\d\d GiB in memory$/);
});

test('a weight mode that does not exist is a usage error naming it (flag and environment)', async () => {
  const flag = await runOvis(['info', '--model', fixtureDir, '--weights', 'int3'], { env: noModel });
  assert.is(flag.code, 2);
  assert.ok(flag.stderr.includes('--weights must be bf16, int8 or int4, got "int3"'), flag.stderr);
  const env = await runOvis(['info', '--model', fixtureDir], { env: { ...noModel, OVIS_WEIGHTS: 'fp8' } });
  assert.is(env.code, 2);
  assert.ok(env.stderr.includes('OVIS_WEIGHTS must be bf16, int8 or int4, got "fp8"'), env.stderr);
  assert.is(env.stdout, '');
});

test.run();

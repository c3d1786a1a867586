// checkModelDir / validateModelDir against real directories: the fixture, sharded and broken copies of
// it, and configs of other models. Copies link the fixture's two big files (model.safetensors,
// tokenizer.json) instead of copying them, as the Hugging Face cache links its snapshots to blobs; a
// test that changes one of them writes a file of its own in its place.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { checkModelDir, validateModelDir } from '../../src/model/validate.js';
import { ModelError } from '../../src/errors.js';
import { fixtureDir } from '../helpers/cli.js';
import { fixtureWeights, fixtureWeightTotals, safetensorsBytes } from '../helpers/model-copy.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';

const LINKED = new Set(['model.safetensors', 'tokenizer.json']);
const fixtureConfig = () => JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));

/** A model directory like the fixture, with `files` written over it (null: left out). */
function model(files: Record<string, Buffer | string | null> = {}): string {
  const dir = tempDir('ovis-validate-');
  for (const f of readdirSync(fixtureDir)) {
    if (!statSync(join(fixtureDir, f)).isFile() || f === 'expected.safetensors' || f in files) continue;
    if (LINKED.has(f)) symlinkSync(join(fixtureDir, f), join(dir, f));
    else copyFileSync(join(fixtureDir, f), join(dir, f));
  }
  for (const [name, data] of Object.entries(files)) if (data !== null) writeFileSync(join(dir, name), data);
  return dir;
}

async function withDir<T>(files: Record<string, Buffer | string | null>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = model(files);
  try {
    return await fn(dir);
  } finally {
    removeTempDir(dir);
  }
}

/** The fixture's tensors re-laid into one file per group, `edit` changing a tensor's header entry and data. */
function relayout(
  group: (name: string) => number,
  groups: number,
  edit: (name: string, entry: any, data: Buffer) => { entry: any; data: Buffer } | null = (_n, entry, data) => ({ entry, data }),
): Buffer[] {
  const { header, blob } = fixtureWeights();
  const headers: Record<string, any>[] = Array.from({ length: groups }, () => ({}));
  const parts: Buffer[][] = Array.from({ length: groups }, () => []);
  const offsets = new Array(groups).fill(0);
  for (const name of Object.keys(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = header[name].data_offsets;
    const edited = edit(name, { dtype: header[name].dtype, shape: header[name].shape }, blob.subarray(b, e));
    if (!edited) continue;
    const g = group(name);
    headers[g][name] = { ...edited.entry, data_offsets: [offsets[g], offsets[g] + edited.data.length] };
    parts[g].push(edited.data);
    offsets[g] += edited.data.length;
  }
  return headers.map((h, g) => safetensorsBytes(h, Buffer.concat(parts[g])));
}

const SHARDS = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
const inShard2 = (n: string) => (n.includes('layers.1.') || n.startsWith('visual_tokenizer.vit') ? 1 : 0);

/** Files of the fixture split over two shards with an index (as in test/cli/model-layouts.test.ts). */
function shardedFiles(opts: { dropFromShard2?: string } = {}): Record<string, Buffer | string | null> {
  const names = Object.keys(fixtureWeights().header).filter((n) => n !== '__metadata__');
  const [a, b] = relayout(inShard2, 2, (n, entry, data) => (n === opts.dropFromShard2 ? null : { entry, data }));
  const weightMap = Object.fromEntries(names.map((n) => [n, SHARDS[inShard2(n)]]));
  return {
    'model.safetensors': null,
    [SHARDS[0]]: a,
    [SHARDS[1]]: b,
    'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  };
}

const problemsOf = async (dir: string) => {
  const r = await checkModelDir(dir);
  if (r.ok) throw new assert.Assertion({ message: `expected problems in ${dir}, got ok` });
  return r;
};
const hasProblem = (problems: string[], ...parts: string[]) => problems.some((p) => parts.every((s) => p.includes(s)));

test('the fixture passes, with the sizes its safetensors header gives', async () => {
  const { params, bytes } = fixtureWeightTotals();
  const r = await checkModelDir(fixtureDir);
  assert.equal(r, { ok: true, summary: { weightFiles: ['model.safetensors'], weightBytes: bytes, parameters: params, format: 'safetensors' } });
  assert.is(bytes, 2 * params); // all BF16
});

test('sharded weights with an index pass; a missing, a truncated shard and a tensor not in its shard are named', async () => {
  const dir = model(shardedFiles());
  try {
    const ok = await checkModelDir(dir);
    assert.ok(ok.ok, JSON.stringify(ok));
    if (ok.ok) {
      assert.equal(ok.summary.weightFiles, SHARDS);
      const single = await checkModelDir(fixtureDir);
      if (single.ok) assert.equal([ok.summary.parameters, ok.summary.weightBytes], [single.summary.parameters, single.summary.weightBytes]);
    }

    const full = statSync(join(dir, SHARDS[0])).size;
    truncateSync(join(dir, SHARDS[0]), full - 1000);
    let r = await problemsOf(dir);
    assert.is(r.kind, 'incomplete');
    assert.equal(r.problems, [`${SHARDS[0]} is truncated: ${full - 1000} bytes, expected ${full}`]);

    rmSync(join(dir, SHARDS[1]));
    r = await problemsOf(dir);
    assert.is(r.kind, 'incomplete');
    assert.ok(hasProblem(r.problems, SHARDS[1], 'missing', 'model.safetensors.index.json'), r.problems.join('\n'));
    // Its tensors are not reported one by one as missing: the shard is.
    assert.is(r.problems.length, 2, r.problems.join('\n'));
  } finally {
    removeTempDir(dir);
  }

  const dropped = 'llm.model.layers.1.self_attn.k_norm.weight';
  await withDir(shardedFiles({ dropFromShard2: dropped }), async (d) => {
    const r = await problemsOf(d);
    assert.is(r.kind, 'invalid');
    assert.ok(hasProblem(r.problems, dropped, 'model.safetensors.index.json', SHARDS[1]), r.problems.join('\n'));
  });
});

test('a truncated model.safetensors is incomplete, with its size and the size its header implies', async () => {
  const whole = readFileSync(join(fixtureDir, 'model.safetensors'));
  const part = whole.subarray(0, 5_000_000);
  await withDir({ 'model.safetensors': part }, async (dir) => {
    const r = await problemsOf(dir);
    assert.equal(r, { ok: false, kind: 'incomplete', problems: [`model.safetensors is truncated: 5000000 bytes, expected ${whole.length}`] });
  });
  // Cut inside the header: still a download that stopped, not a corrupt file.
  await withDir({ 'model.safetensors': whole.subarray(0, 100) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'incomplete');
    assert.match(r.problems[0], /^model\.safetensors is truncated: 100 bytes, shorter than its \d+-byte header$/);
  });
});

test('a weight file that is not safetensors (a Git LFS pointer) is invalid', async () => {
  const pointer = 'version https://git-lfs.github.com/spec/v1\noid sha256:0000\nsize 10406608\n';
  await withDir({ 'model.safetensors': pointer }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.match(r.problems[0], /^model\.safetensors is not a safetensors file: its header length \d+ is over the 100 MiB limit$/);
  });
});

test('an F32 tensor is invalid, naming the tensor and its dtype (the engine maps BF16 only)', async () => {
  const name = 'llm.model.norm.weight';
  const [file] = relayout(() => 0, 1, (n, entry, data) =>
    n === name ? { entry: { ...entry, dtype: 'F32' }, data: Buffer.alloc(data.length * 2) } : { entry, data });
  await withDir({ 'model.safetensors': file }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.equal(r.problems, [`tensor ${name} in model.safetensors is F32, but ovis runs BF16 weights only (the released dtype)`]);
  });
});

test('weights that do not match config.json: a wrong shape and a missing tensor are named', async () => {
  const cfg = fixtureConfig();
  cfg.llm_config.intermediate_size = 64;
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    // 2 layers × 3 MLP matrices: more than five, so one sentence with examples.
    assert.equal(r.problems, [
      '6 tensors do not have the shapes config.json implies (llm.model.layers.0.mlp.gate_proj.weight [96, 32] instead of [64, 32], ' +
        'llm.model.layers.0.mlp.up_proj.weight [96, 32] instead of [64, 32], llm.model.layers.0.mlp.down_proj.weight [32, 96] instead of [32, 64], …): ' +
        'the weights do not belong to this config.json',
    ]);
  });
  cfg.llm_config.intermediate_size = 96;
  cfg.vit_config.image_size = 32;
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.equal(r.problems, [
      'tensor visual_tokenizer.vit.vision_model.embeddings.position_embedding.weight in model.safetensors has shape [16, 48], but config.json implies [4, 48]',
    ]);
  });
  // Untied embeddings need llm.lm_head.weight, which the (tied) fixture does not have.
  cfg.vit_config.image_size = 64;
  cfg.llm_config.tie_word_embeddings = false;
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.equal(r.problems, ['tensor llm.lm_head.weight (shape [151936, 32] from config.json) is missing from the weights']);
  });
});

test('safetensors of another model: one sentence for the many missing tensors', async () => {
  const other = safetensorsBytes({ 'model.embed_tokens.weight': { dtype: 'BF16', shape: [4, 2], data_offsets: [0, 16] } }, Buffer.alloc(16));
  await withDir({ 'model.safetensors': other }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.is(r.problems.length, 1, r.problems.join('\n'));
    assert.is(r.problems[0], '65 of the 65 tensors of an Ovis2.5 model with this config.json are missing from the weights (llm.model.embed_tokens.weight, llm.model.layers.0.input_layernorm.weight, llm.model.layers.0.post_attention_layernorm.weight, …): they are not Ovis2.5 weights in the released layout, or not the weights of this config.json');
  });
});

test('missing tokenizer.json, chat template or weights: incomplete, each named', async () => {
  await withDir({ 'tokenizer.json': null }, async (dir) => {
    assert.equal(await checkModelDir(dir), { ok: false, kind: 'incomplete', problems: ['tokenizer.json is missing'] });
  });
  // tokenizer_config.json holds a copy of the template: without both it there is none.
  const tokConfig = JSON.parse(readFileSync(join(fixtureDir, 'tokenizer_config.json'), 'utf8'));
  delete tokConfig.chat_template;
  await withDir({ 'chat_template.json': null, 'tokenizer_config.json': JSON.stringify(tokConfig), 'model.safetensors': null }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'incomplete');
    assert.equal(r.problems, [
      'no chat template: chat_template.json is missing, and there is no chat_template.jinja or chat_template in tokenizer_config.json',
      'no weights: neither model.safetensors nor model.safetensors.index.json',
    ]);
  });
  // Either of the other two template sources is enough, as for ChatTemplate.load.
  await withDir({ 'chat_template.json': null }, async (dir) => {
    assert.ok((await checkModelDir(dir)).ok);
  });
});

test('an index without weight_map and a broken optional JSON file are invalid', async () => {
  await withDir({ 'model.safetensors.index.json': '{"metadata": {}}', 'generation_config.json': '{"temperature": 0.6,' }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.is(r.problems.length, 2, r.problems.join('\n'));
    assert.ok(hasProblem(r.problems, 'generation_config.json is not valid JSON'));
    assert.ok(hasProblem(r.problems, 'model.safetensors.index.json has no "weight_map" object'));
  });
});

test('an Ovis2 config is unsupported, with one message naming Ovis2 and what ovis runs', async () => {
  // The shape of AIDC-AI/Ovis2-*'s config.json: model_type "ovis", a Qwen2 LLM, an AIMv2 visual tokenizer.
  const ovis2 = {
    architectures: ['Ovis'],
    model_type: 'ovis',
    llm_config: { model_type: 'qwen2', hidden_size: 1536 },
    visual_tokenizer_config: { model_type: 'aimv2_visual_tokenizer', vocab_size: 65536, backbone_config: { model_type: 'aimv2' } },
  };
  await withDir({ 'config.json': JSON.stringify(ovis2), 'tokenizer.json': null }, async (dir) => {
    const r = await checkModelDir(dir);
    assert.equal(r, {
      ok: false,
      kind: 'unsupported',
      problems: [`${dir} holds an Ovis2 model (model_type "ovis"), which ovis does not support yet: ovis runs Ovis2.5 (AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B)`],
    });
  });
  const ovis16 = { model_type: 'ovis', llm_config: { model_type: 'gemma2' }, visual_tokenizer_config: { model_type: 'siglip_visual_tokenizer' } };
  const bare = { model_type: 'ovis', llm_config: { model_type: 'qwen2' } };
  for (const [cfg, what] of [[ovis16, 'an Ovis1.6 or Ovis1.5 model'], [bare, 'an earlier Ovis generation (such as Ovis2 or Ovis1.6)'], [{ model_type: 'ovis_u1' }, 'an Ovis-U1 model']] as const) {
    await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
      const r = await problemsOf(dir);
      assert.is(r.kind, 'unsupported');
      assert.ok(r.problems.length === 1 && r.problems[0].startsWith(`${dir} holds ${what} (model_type `), r.problems[0]);
    });
  }
});

test('a non-Ovis config is "not an Ovis model"; no model_type at all is invalid', async () => {
  await withDir({ 'config.json': JSON.stringify({ model_type: 'qwen2_vl', architectures: ['Qwen2VLForConditionalGeneration'] }) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.equal(r, { ok: false, kind: 'unsupported', problems: [`${dir} is not an Ovis model (model_type "qwen2_vl"): ovis runs Ovis2.5 (AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B)`] });
  });
  const cfg = fixtureConfig();
  delete cfg.model_type;
  delete cfg.architectures;
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.equal(r.problems, ['config.json has no model_type (an Ovis2.5 config has "model_type": "ovis2_5")']);
  });
});

test('an Ovis2.5 config saved by the GitHub code (model_type "ovis" with vit_config) passes', async () => {
  const cfg = { ...fixtureConfig(), model_type: 'ovis', architectures: ['Ovis'] };
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    assert.ok((await checkModelDir(dir)).ok);
  });
});

test('config.json without a key the engine needs, or with a value it does not implement, is invalid naming the key', async () => {
  const cfg = fixtureConfig();
  delete cfg.llm_config.head_dim;
  cfg.vit_config.patch_size = 'sixteen';
  cfg.llm_config.rope_scaling = { type: 'yarn', factor: 4 };
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const r = await problemsOf(dir);
    assert.is(r.kind, 'invalid');
    assert.equal(r.problems, [
      'config.json: llm_config.head_dim is missing',
      'config.json: llm_config.rope_scaling is {"type":"yarn","factor":4}, but ovis implements only null (no RoPE scaling)',
      'config.json: vit_config.patch_size is "sixteen", expected a positive integer',
    ]);
  });
});

test('validateModelDir returns the summary, or throws a ModelError (exit 4) naming the directory, the problems and the fix', async () => {
  const summary = await validateModelDir(fixtureDir);
  assert.is(summary.weightFiles[0], 'model.safetensors');
  const fix = 'run `ovis pull AIDC-AI/Ovis2.5-2B` to download the missing files';
  await withDir({ 'tokenizer.json': null }, async (dir) => {
    const err = await validateModelDir(dir, fix).then(() => undefined, (e) => e);
    assert.instance(err, ModelError);
    assert.is(err.exitCode, 4);
    assert.is(err.message, `the model in ${dir} is incomplete: tokenizer.json is missing; ${fix}`);
  });
  // Many problems: the first five, then how many more; a fix chosen by kind.
  const cfg = fixtureConfig();
  for (const k of ['hidden_size', 'num_hidden_layers', 'num_attention_heads', 'num_key_value_heads', 'head_dim', 'intermediate_size', 'vocab_size']) delete cfg.llm_config[k];
  await withDir({ 'config.json': JSON.stringify(cfg) }, async (dir) => {
    const err = await validateModelDir(dir, (kind) => (kind === 'invalid' ? 'download the model again' : undefined)).then(() => undefined, (e) => e);
    assert.instance(err, ModelError);
    const lines = err.message.split('\n');
    assert.is(lines[0], `${dir} is not a valid Ovis2.5 model directory:`);
    assert.is(lines[1], '  - config.json: llm_config.hidden_size is missing');
    assert.is(lines.length, 1 + 5 + 2);
    assert.is(lines[6], '  and 2 more');
    assert.is(lines[7], 'download the model again');
  });
  const err = await validateModelDir('/nonexistent/ovis-model', fix).then(() => undefined, (e) => e);
  assert.is(err.message, `/nonexistent/ovis-model does not exist; ${fix}`);
});

test.run();

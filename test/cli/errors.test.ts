// Every error path of `ovis ask` / `ovis info`: the message names the problem and the exit code is
// the one in src/errors.ts (2 usage, 3 input, 4 model, 5 engine).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, root, runOvis } from '../helpers/cli.js';
import { fixtureWeights, safetensorsBytes, withModel } from '../helpers/model-copy.js';

/** The fixture's weights with their header edited by `edit` (data blob unchanged). */
function editedWeights(edit: (header: Record<string, any>) => void): Buffer {
  const { header, blob } = fixtureWeights();
  edit(header);
  return safetensorsBytes(header, blob);
}

const ask = (model: string, extra: string[] = []) => runOvis(['ask', '--model', model, '--max-new-tokens', '1', ...extra, 'Hi']);

/** `ovis ask` on a copy of the fixture with these weights (the copy is removed afterwards). */
const askWithWeights = (weights: Buffer) => withModel({ 'model.safetensors': weights }, (dir) => ask(dir));

test('no prompt at all is a usage error', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir]);
  assert.is(r.code, 2);
  assert.match(r.stderr, /no prompt/);
  assert.is(r.stdout, '');
});

test('bad option values name the flag and value, exit 2', async () => {
  for (const [flag, value] of [['--temperature', '-1'], ['--top-p', '0'], ['--max-new-tokens', 'lots'], ['--top-k', '1.5'], ['--device', 'tpu']]) {
    const r = await runOvis(['ask', '--model', fixtureDir, flag, value, 'Hi']);
    assert.is(r.code, 2, `${flag} ${value}`);
    assert.ok(r.stderr.includes(flag) && r.stderr.includes(value), r.stderr);
  }
  const r = await runOvis(['ask', '--bogus', 'Hi']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /unknown option '--bogus'/);
});

test('--json errors are JSON lines on stdout and a non-zero exit', async () => {
  const r = await runOvis(['ask', '--json', '--model', '/nonexistent/ovis-model', 'Hi']);
  assert.is(r.code, 4);
  const [ev] = jsonLines(r.stdout);
  assert.is(ev.type, 'error');
  assert.is(ev.code, 'model');
  assert.match(ev.message, /nonexistent/);
  const u = await runOvis(['ask', '--json', '--temperature', 'x', 'Hi']);
  assert.is(u.code, 2);
  assert.is(jsonLines(u.stdout)[0].code, 'usage');
});

test('a missing model directory is a model error', async () => {
  const r = await ask('/nonexistent/ovis-model');
  assert.is(r.code, 4);
  assert.match(r.stderr, /\/nonexistent\/ovis-model/);
});

test('no --model and no OVIS_MODEL: the default model, not downloaded, is a model error naming ovis pull', async () => {
  // runOvis gives every run empty model caches, offline (isolatedModelEnv)
  const r = await runOvis(['ask', 'Hi'], { env: { OVIS_MODEL: undefined } });
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /AIDC-AI\/Ovis2\.5-2B is not downloaded/);
  assert.match(r.stderr, /`ovis pull AIDC-AI\/Ovis2\.5-2B`/);
  assert.match(r.stderr, /--model/);
});

test('a truncated safetensors file is a model error naming the file', async () => {
  const full = readFileSync(join(fixtureDir, 'model.safetensors'));
  const r = await askWithWeights(full.subarray(0, full.length - 1000));
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /model\.safetensors is truncated/);
});

test('a missing tensor is a model error naming the tensor', async () => {
  const name = 'llm.model.layers.1.mlp.down_proj.weight';
  const r = await askWithWeights(editedWeights((h) => delete h[name]));
  assert.is(r.code, 4, r.stderr);
  assert.ok(r.stderr.includes(name), r.stderr);
});

test('a tensor of the wrong shape is a model error naming tensor and shapes', async () => {
  const name = 'llm.model.layers.0.self_attn.q_proj.weight';
  const r = await askWithWeights(editedWeights((h) => {
    const [a, b] = h[name].shape;
    h[name].shape = [b, a];
  }));
  assert.is(r.code, 4, r.stderr);
  assert.ok(r.stderr.includes(name), r.stderr);
  assert.match(r.stderr, /\[32, 64\]|\[64, 32\]/);
});

test('garbage instead of a safetensors file is a model error', async () => {
  const r = await askWithWeights(Buffer.from('this is not a safetensors file at all'));
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /model\.safetensors/);
});

test('a prompt with a literal <|endoftext|> is an input error', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, 'before <|endoftext|> after']);
  assert.is(r.code, 3);
  assert.match(r.stderr, /endoftext/);
});

test('--device cuda without a CUDA backend fails clearly (engine error)', async () => {
  const r = await ask(fixtureDir, ['--device', 'cuda']);
  assert.is(r.code, 5, r.stderr);
  assert.match(r.stderr, /cuda/i);
});

test('a missing engine binary is an engine error that says how to build it', async () => {
  const r = await ask(fixtureDir, []).then(() => runOvis(['ask', '--model', fixtureDir, 'Hi'], { env: { OVIS_ENGINE: join(root, 'no-such-engine') } }));
  assert.is(r.code, 5);
  assert.match(r.stderr, /OVIS_ENGINE/);
});

test.run();

// Trained checkpoints as they come (issue 14 item 5): a directory with the pytorch_model*.bin state
// dicts a trainer wrote and no safetensors, made by test/helpers/write-torch-bin.py with Python's own
// pickle and zipfile (the opcodes torch.save emits; no torch needed) from the fixture's tensors. It
// must answer exactly as the fixture (same tokens and log-probabilities) and `ovis info` must say
// what it found. The engine's own tests of the reader: native/tests/lora_checkpoints.rs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, root, runOvis } from '../helpers/cli.js';
import { skipTest } from '../helpers/skip.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { input } from '../helpers/vision.js';

const python = spawnSync('python3', ['--version']).status === 0;

/** The fixture with its weights as torch.save files (`shards` of them) and config model_type `type`. */
function binModel(shards: number, type: string): string {
  const dir = tempDir('ovis-torch-bin-');
  for (const f of readdirSync(fixtureDir)) {
    if (statSync(join(fixtureDir, f)).isFile() && !f.endsWith('.safetensors')) copyFileSync(join(fixtureDir, f), join(dir, f));
  }
  const config = JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, model_type: type }));
  execFileSync('python3', [join(root, 'test', 'helpers', 'write-torch-bin.py'), join(fixtureDir, 'model.safetensors'), dir, String(shards)]);
  return dir;
}

const ask = (model: string) =>
  runOvis(['ask', '--model', model, '--temperature', '0', '--max-new-tokens', '6', '--json', '--top-logprobs', '2', '--min-pixels', String(64 * 64), '--max-pixels', String(128 * 128), input('small.png'), 'What is this?']);

const tokens = (stdout: string) => stdout.trim().split('\n').map((l) => JSON.parse(l)).filter((e) => e.type === 'token');

for (const [shards, type] of [[1, 'ovis2_5'], [3, 'ovis']] as const) {
  test(`${shards} pytorch_model .bin file(s), model_type "${type}": the fixture's answer, and ovis info says so`, async () => {
    if (!python) return skipTest('torch-checkpoint', 'python3 was not found (it writes the .bin checkpoint)');
    const dir = binModel(shards, type);
    try {
      const [bin, st] = await Promise.all([ask(dir), ask(fixtureDir)]);
      assert.is(bin.code, 0, bin.stderr);
      assert.equal(tokens(bin.stdout), tokens(st.stdout));
      assert.is(tokens(bin.stdout).length, 6);
      const info = await runOvis(['info', '--model', dir, '--json']);
      assert.is(info.code, 0, info.stderr);
      const c = JSON.parse(info.stdout).model.checkpoint;
      assert.is(c.format, 'torch');
      assert.is(c.model_type, type);
      assert.equal(c.files, shards === 1 ? ['pytorch_model.bin'] : ['pytorch_model-00001-of-00003.bin', 'pytorch_model-00002-of-00003.bin', 'pytorch_model-00003-of-00003.bin']);
      const text = await runOvis(['info', '--model', dir]);
      assert.match(text.stdout, /weights +torch\.save state dict \(pytorch_model\*\.bin, a trainer's output\)/);
    } finally {
      removeTempDir(dir);
    }
  });
}

test('a shard the index names but that is missing is reported before the engine starts', async () => {
  if (!python) return skipTest('torch-checkpoint', 'python3 was not found (it writes the .bin checkpoint)');
  const dir = binModel(3, 'ovis2_5');
  try {
    execFileSync('rm', [join(dir, 'pytorch_model-00002-of-00003.bin')]);
    const r = await ask(dir);
    assert.is(r.code, 4, r.stderr);
    assert.match(r.stderr, /pytorch_model-00002-of-00003\.bin is missing \(pytorch_model\.bin\.index\.json names it\)/);
  } finally {
    removeTempDir(dir);
  }
});

test.run();

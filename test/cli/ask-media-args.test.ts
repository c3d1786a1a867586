// A positional argument that names a media file must be one: `ovis ask missing.jpg "..."` is an
// input error, not a question answered without its image.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, runOvis } from '../helpers/cli.js';

test('a missing image argument is an input error (exit 3) that says how to mean it as text', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, 'missing-photo.jpg', 'What is written on the sign?']);
  assert.is(r.code, 3);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /missing-photo\.jpg does not exist/);
  assert.match(r.stderr, /quoted prompt/);
});

test('a missing video argument too; a media name inside a longer prompt is text', async () => {
  assert.is((await runOvis(['ask', '--model', fixtureDir, 'clip.mp4', 'Summarise'])).code, 3);
  const r = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '2', 'what is a file like photo.jpg?']);
  assert.is(r.code, 0, r.stderr);
});

test('--json timings hold the command line\'s own phases beside the engine\'s', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '2', '--json', '--verbose', `${fixtureDir}/inputs/photo.jpg`, 'Hi']);
  assert.is(r.code, 0, r.stderr);
  const done = JSON.parse(r.stdout.trim().split('\n').at(-1)!);
  for (const k of ['vision_ms', 'prefill_ms', 'first_token_ms', 'startup_ms', 'model_load_ms', 'tokenizer_ms', 'media_ms', 'wall_ms']) {
    assert.ok(Number.isFinite(done.timings[k]) && done.timings[k] >= 0, k);
  }
  assert.ok(done.timings.media_ms > 0 && done.timings.tokenizer_ms > 0 && done.timings.wall_ms >= done.timings.startup_ms);
  assert.match(r.stderr, /ovis: start [\d.]+ ms, engine \+ model [\d.]+ ms, tokenizer [\d.]+ ms, media [\d.]+ ms/);
});

test.run();

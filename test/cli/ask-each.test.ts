// `ask --each`: one prompt over many files with the model loaded once; answers in input order,
// a bad file reported on its own line while the others go on, exit 3 if any failed.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-each-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const photo = join(work, 'photo.jpg');
const tall = join(work, 'tall.png');
const broken = join(work, 'broken.png');
copyFileSync(join(fixtureDir, 'inputs', 'photo.jpg'), photo);
copyFileSync(join(fixtureDir, 'inputs', 'tall.png'), tall);
writeFileSync(broken, 'not a png at all');
const each = ['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', '--each', 'Describe this image.'];

test('one JSON line per file in order; a corrupt and a missing file get error lines; exit 3', async () => {
  const r = await runOvis([...each, photo, broken, join(work, 'missing.png'), tall]);
  assert.is(r.code, 3, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.map((l) => l.file), [photo, broken, join(work, 'missing.png'), tall]);
  assert.equal(lines.map((l) => (l.error ? l.error.code : 'ok')), ['ok', 'input', 'input', 'ok']);
  assert.match(lines[1].error.message, /cannot decode image/);
  assert.match(lines[2].error.message, /no such file/);
  for (const l of [lines[0], lines[3]]) {
    assert.type(l.answer, 'string');
    assert.is(l.usage.completion_tokens, 6);
    assert.type(l.timings.first_token_ms, 'number');
  }
  assert.match(r.stderr, /2 of 4 files failed/);
});

test('each answer equals a separate `ask` of the same file (greedy)', async () => {
  const r = await runOvis([...each, tall, photo]);
  assert.is(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  for (const [i, file] of [tall, photo].entries()) {
    const alone = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', file, 'Describe this image.']);
    assert.is(lines[i].answer, alone.stdout.trim(), file);
  }
  // The second file reuses the first's cached prompt head (<|im_start|>user\n).
  assert.ok(lines[1].usage.cached_tokens > 0);
});

test('--format text: a header before each answer; file names from stdin with -', async () => {
  const r = await runOvis([...each, '--format', 'text', '-'], { input: `${photo}\n\n${tall}\n` });
  assert.is(r.code, 0, r.stderr);
  const parts = r.stdout.split(/^== (.*) ==$/m);
  assert.equal([parts[1], parts[3]], [photo, tall]);
  assert.ok(parts[2].trim().length > 0 && parts[4].trim().length > 0);
});

test('--each refuses what it cannot honour, as usage errors', async () => {
  assert.is((await runOvis([...each])).code, 2);
  assert.is((await runOvis([...each, '--save', join(work, 'x.json'), photo])).code, 2);
  assert.is((await runOvis([...each, '--json', '--format', 'text', photo])).code, 2);
});

test.run();

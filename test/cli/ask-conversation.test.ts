// Conversation files from `ask`: --save writes the conversation with the new answer, --continue
// reads it, adds a turn and writes it back; what they write is what --messages reads.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-conv-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const photo = join(work, 'photo.jpg');
copyFileSync(join(fixtureDir, 'inputs', 'photo.jpg'), photo);
const ask = (...args: string[]) => runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', ...args]);

test('--continue starts a missing file, then adds turns; the answer is what was printed', async () => {
  const file = join(work, 'notes.json');
  const a = await ask('--continue', file, photo, 'What is this?');
  assert.is(a.code, 0, a.stderr);
  const b = await ask('--continue', file, 'And the colours?');
  assert.is(b.code, 0, b.stderr);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.map((m: any) => m.role), ['user', 'assistant', 'user', 'assistant']);
  assert.equal(saved[0].content, [{ type: 'image', path: 'photo.jpg' }, { type: 'text', text: 'What is this?' }]);
  assert.is(saved[1].content, a.stdout.trim());
  assert.is(saved[3].content, b.stdout.trim());
  assert.equal(readdirSync(work).filter((f) => f.endsWith('.tmp')), []);
});

test('a --save file continued with --messages gives the same ids as the conversation given whole', async () => {
  const file = join(work, 'saved.json');
  assert.is((await ask('--save', file, '--system', 'Be brief.', photo, 'What is this?')).code, 0);
  const continued = await ask('--messages', file, '--json', 'And then?');
  assert.is(continued.code, 0, continued.stderr);
  // The same conversation, built without --save: the first answer as the model gave it.
  const first = await ask('--system', 'Be brief.', photo, 'What is this?');
  const whole = join(work, 'whole.json');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(whole, JSON.stringify([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'image', path: photo }, { type: 'text', text: 'What is this?' }] },
    { role: 'assistant', content: first.stdout.trim() },
  ]));
  const direct = await ask('--messages', whole, '--json', 'And then?');
  const ids = (r: typeof direct) => jsonLines(r.stdout).filter((e) => e.type === 'token').map((e) => e.id);
  assert.equal(ids(continued), ids(direct));
  assert.is(jsonLines(continued.stdout).at(-1).usage.prompt_tokens, jsonLines(direct.stdout).at(-1).usage.prompt_tokens);
});

test('thinking is saved as reasoning_content and is not shown to the model again', async () => {
  const file = join(work, 'think.json');
  assert.is((await ask('--think', '--save', file, 'Why?')).code, 0);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.ok(saved[1].reasoning_content.length > 0, 'all 6 tokens were thinking');
  assert.is(saved[1].content, '');
});

test('conflicting options are usage errors and write nothing', async () => {
  const file = join(work, 'never.json');
  assert.is((await ask('--continue', file, '--messages', file, 'x')).code, 2);
  assert.is((await ask('--continue', file, '--save', file, 'x')).code, 2);
  assert.not.ok(existsSync(file));
});

test.run();

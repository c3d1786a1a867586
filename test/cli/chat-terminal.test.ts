// `ovis chat` driven as a person drives it: in a real terminal (tmux), keys typed, the screen read,
// against the real engine on the fixture model. Each test is one terminal session.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { ovisCommand, Term, tmuxAvailable } from '../helpers/tmux.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-chat-'));
copyFileSync(join(fixtureDir, 'inputs', 'photo.jpg'), join(work, 'photo.jpg'));
copyFileSync(join(fixtureDir, 'inputs', 'small.png'), join(work, 'my small.png'));
writeFileSync(join(work, 'broken.png'), 'not an image');
// CI=true on purpose: Ink would draw nothing live under it; the chat must not care.
const env = { XDG_STATE_HOME: join(work, 'state'), CI: 'true' };
const chat = (args: string[], opts: { width?: number; height?: number; env?: Record<string, string> } = {}) =>
  new Term(ovisCommand(['chat', '--model', fixtureDir, ...args]), { cwd: work, ...opts, env: { ...env, ...opts.env } });
const ready = /context 0\/40,960/;
const SPINNER = /^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] /;
/** The answer of the turn after `question` has started streaming: a row that is not the spinner. */
const answering = (question: string) => (s: string) => {
  const after = s.split(`› ${question}\n`)[1];
  if (!after?.includes('────')) return false; // still typed in the input box, not yet sent
  return after.split('────')[0].split('\n').some((row) => row.trim().length > 0 && !SPINNER.test(row));
};
const turnDone = (n: number) => (s: string) => (s.match(/tok\/s/g) ?? []).length >= 1 && (s.match(/^› /gm) ?? []).length >= n;
const terms: Term[] = [];
const open = (t: Term) => (terms.push(t), t);

test.after.each(() => {
  for (const t of terms.splice(0)) t.kill();
});
test.after(() => rmSync(work, { recursive: true, force: true }));

const available = tmuxAvailable();
if (!available && (process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS)) throw new Error('tmux is needed for the terminal tests (apt-get install tmux)');
const tt = available ? test : test.skip;
if (!available) process.stderr.write('SKIPPED: chat terminal tests: tmux is not installed (apt-get install tmux)\n');

tt('attach by path (plain, quoted, /image), confirm sizes, answer, reuse the cache, save, leave with Ctrl+D', async () => {
  const t = open(chat(['--temperature', '0', '-n', '12']));
  await t.waitFor(ready);
  t.type('Describe photo.jpg');
  t.keys('Enter');
  let s = await t.waitFor(/image photo\.jpg · 640×480 → 640×480 · 300 visual tokens[\s\S]*tok\/s/);
  assert.match(s, /› Describe photo\.jpg/);
  t.type(`"my small.png" and this one?`);
  t.keys('Enter');
  s = await t.waitFor((x) => /image my small\.png · /.test(x) && (x.match(/cut off at 12 tokens/g) ?? []).length === 2);
  t.type('/stats');
  t.keys('Enter');
  s = await t.waitFor(/last turn: \d+ prompt tokens prefilled, (\d+) reused from the cache/);
  const reused = Number(/reused from the cache \(cached_tokens\)/.test(s) && /prefilled, (\d+) reused/.exec(s)![1]);
  assert.ok(reused > 300, `the second turn reuses the first image's cache (${reused} positions)`);
  t.type('/save conv.json');
  t.keys('Enter');
  await t.waitFor(/saved 4 messages to conv\.json/);
  t.keys('C-d');
  assert.is(await t.exitCode(), 0);
  const saved = JSON.parse(readFileSync(join(work, 'conv.json'), 'utf8'));
  assert.equal(saved.map((m: any) => m.role), ['user', 'assistant', 'user', 'assistant']);
  assert.equal(saved[0].content, [{ type: 'image', path: 'photo.jpg' }, { type: 'text', text: 'Describe' }]);
  assert.equal(saved[2].content, [{ type: 'image', path: 'my small.png' }, { type: 'text', text: 'and this one?' }]);

  // The same first question asked with `ask` gives the same answer; the second turn, answered
  // from the chat's kept cache, equals `ask --messages` prefilling the whole conversation afresh.
  const first = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '12', join(work, 'photo.jpg'), 'Describe']);
  assert.is(first.stdout.trim(), saved[1].content);
  writeFileSync(join(work, 'upto2.json'), JSON.stringify(saved.slice(0, 3)));
  const second = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '12', '--messages', join(work, 'upto2.json')]);
  assert.is(second.code, 0, second.stderr);
  assert.is(second.stdout.trim(), saved[3].content);
});

tt('Ctrl+C stops an answer (the partial answer stays), the chat goes on, Ctrl+C on an empty input leaves', async () => {
  const t = open(chat(['--temperature', '1', '--seed', '5', '-n', '40000']));
  await t.waitFor(ready);
  t.type('Count forever');
  t.keys('Enter');
  await t.waitFor(answering('Count forever'));
  t.keys('C-c');
  let s = await t.waitFor(/\(stopped\)/);
  t.type('/stats');
  t.keys('Enter');
  s = await t.waitFor(/last turn: .* generated .*cancelled/s);
  const generated = Number(/(\d[\d,]*) generated \(/.exec(s)![1].replace(/,/g, ''));
  assert.ok(generated > 0 && generated < 40000, `${generated} tokens`);
  t.type('/save partial.json');
  t.keys('Enter');
  await t.waitFor(/saved 2 messages/);
  const saved = JSON.parse(readFileSync(join(work, 'partial.json'), 'utf8'));
  assert.ok(saved[1].content.length > 0, 'the partial answer is part of the conversation');
  t.keys('C-c');
  assert.is(await t.exitCode(), 0);
});

tt('thinking streams, folds to one line when the answer starts, and Ctrl+T shows or folds it', async () => {
  const t = open(chat(['--temperature', '0', '-n', '16', '--think-budget', '4']));
  await t.waitFor(ready);
  t.type('Why is the sky blue?');
  t.keys('Enter');
  // 4 thoughts, then the early-stop text closes the thinking and the answer starts.
  let s = await t.waitFor(/▸ thought for 4 tokens · Ctrl\+T shows it[\s\S]*tok\/s/);
  assert.not.match(s, /┊/);
  t.keys('C-t');
  s = await t.waitFor(/▾ thinking \(4 tokens\) · Ctrl\+T folds it\n┊ /);
  assert.match(s, /Considering the limited time by the user/);
  t.keys('C-t');
  s = await t.waitFor((x) => /▸ thought for 4 tokens/.test(x) && !/▾ thinking/.test(x));
  t.type('/think off');
  t.keys('Enter');
  t.type('Hi');
  t.keys('Enter');
  s = await t.waitFor(/› Hi\n(?!▸)[\s\S]*tok\/s · first token [\d.]+ s\s*$/);
  assert.is((s.match(/▸ thought for/g) ?? []).length, 1, 'no thinking line for a turn without thinking');
  t.keys('C-d');
  assert.is(await t.exitCode(), 0);
});

tt('multi-line input (Ctrl+J, a bracketed paste), Up recalls, bad paths and files are chat messages', async () => {
  const t = open(chat(['--temperature', '0', '-n', '4']));
  await t.waitFor(ready);
  t.type('line one');
  t.keys('C-j');
  t.type('line two');
  t.keys('Enter');
  await t.waitFor(/› line one\n {2}line two/);
  t.paste('pasted one\npasted two');
  await t.waitFor(/› pasted one\n {2}pasted two\s*\n.*context/);
  t.keys('Enter');
  await t.waitFor((s) => (s.match(/cut off at 4 tokens/g) ?? []).length === 2);
  t.keys('Up');
  await t.waitFor(/› pasted one\n {2}pasted two\s*\n[^\n]*context/);
  t.keys('C-u', 'C-u');
  t.type('what is ./nope.png');
  t.keys('Enter');
  await t.waitFor(/error: no such file: \.\/nope\.png/);
  t.keys('C-u');
  t.type('/image broken.png');
  t.keys('Enter');
  await t.waitFor(/error: cannot decode image .*broken\.png/);
  t.type('/frobnicate');
  t.keys('Enter');
  await t.waitFor(/error: unknown command \/frobnicate\ncommands:/);
  t.type('/save two.json');
  t.keys('Enter');
  await t.waitFor(/saved 4 messages/);
  t.type('/exit');
  t.keys('Enter');
  assert.is(await t.exitCode(), 0);
  const saved = JSON.parse(readFileSync(join(work, 'two.json'), 'utf8'));
  assert.is(saved[0].content, 'line one\nline two');
  assert.is(saved[2].content, 'pasted one\npasted two');
});

tt('a saved conversation continues: chat --load (from ask --save) shows it and goes on', async () => {
  const file = join(work, 'from-ask.json');
  const a = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', '--save', file, join(work, 'photo.jpg'), 'What is this?']);
  assert.is(a.code, 0, a.stderr);
  const t = open(chat(['--temperature', '0', '-n', '6', '--load', file, '--save', file]));
  let s = await t.waitFor(/loaded 2 messages from/);
  assert.match(s, /› What is this\?\n {2}↳ image photo\.jpg · 640×480/);
  t.type('And the colours?');
  t.keys('Enter');
  s = await t.waitFor(/› And the colours\?[\s\S]*tok\/s/);
  t.keys('C-d');
  assert.is(await t.exitCode(), 0);
  const saved = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(saved.map((m: any) => m.role), ['user', 'assistant', 'user', 'assistant']);
  assert.is(saved[2].content, 'And the colours?');
});

tt('a SIGINT to the whole foreground process group stops the answer like Ctrl+C', async () => {
  const t = open(chat(['--temperature', '1', '--seed', '9', '-n', '40000']));
  await t.waitFor(ready);
  t.type('Go on and on');
  t.keys('Enter');
  await t.waitFor(answering('Go on and on'));
  process.kill(-t.foregroundGroup(), 'SIGINT');
  await t.waitFor(/\(stopped\)/);
  t.type('/exit');
  t.keys('Enter');
  assert.is(await t.exitCode(), 0);
});

tt('narrow and colourless: 50 columns with NO_COLOR still chats, no colour codes, a status that fits', async () => {
  const t = open(chat(['--temperature', '0', '-n', '4'], { width: 50, height: 16, env: { NO_COLOR: '1' } }));
  await t.waitFor(ready);
  t.type('Hello');
  t.keys('Enter');
  const s = await t.waitFor(/tok\/s/);
  for (const line of s.split('\n')) assert.ok([...line].length <= 50, line);
  // Bold stays; a colour is SGR 30–38, 40–48, 90–97 or 100–107 (39 and 49 are tmux's resets).
  const sgr = (t.screen(true).match(/\x1b\[[\d;]*m/g) ?? []).flatMap((e) => e.slice(2, -1).split(';'));
  assert.equal(sgr.filter((p) => /^(3[0-8]|4[0-8]|9[0-7]|10[0-7])$/.test(p)), [], 'no foreground or background colour');
  t.keys('C-d');
  assert.is(await t.exitCode(), 0);
});

tt('TERM=dumb: plain lines, the same commands, /exit', async () => {
  const t = open(chat(['--temperature', '0', '-n', '4'], { env: { TERM: 'dumb' } }));
  await t.waitFor(/^>\s*$/m);
  t.type('Hello');
  t.keys('Enter');
  let s = await t.waitFor(/tok\/s[^\]]*\]\n>\s*$/m);
  assert.not.match(t.screen(true), /\x1b\[\d*[ABJK]/, 'no cursor movement or erasing');
  t.type('/stats');
  t.keys('Enter');
  s = await t.waitFor(/last turn: /);
  t.type('/exit');
  t.keys('Enter');
  assert.is(await t.exitCode(), 0);
  assert.match(s, /4 generated/);
});

test('without a terminal on stdin, chat says to use ask and exits 2', async () => {
  const r = await runOvis(['chat', '--model', fixtureDir], { input: 'hello\n' });
  assert.is(r.code, 2);
  assert.match(r.stderr, /ovis ask/);
  assert.is(r.stdout, '');
});

test.run();

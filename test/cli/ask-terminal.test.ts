// `ovis ask` in real terminals: Ctrl-C typed at the keyboard (the terminal signals the whole
// foreground process group), a pseudo-terminal that reports 0 columns, the phase line on stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, jsonLines } from '../helpers/cli.js';
import { scriptAvailable, underScript } from '../helpers/pty.js';
import { ovisCommand, shellQuote, Term, tmuxAvailable } from '../helpers/tmux.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-askterm-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const photo = join(fixtureDir, 'inputs', 'photo.jpg');

const hasTmux = tmuxAvailable();
const hasScript = scriptAvailable();
if ((process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS) && (!hasTmux || !hasScript)) throw new Error('tmux and script (util-linux) are needed for the terminal tests');
const withTmux = hasTmux ? test : test.skip;
const withScript = hasScript ? test : test.skip;
if (!hasTmux) process.stderr.write('SKIPPED: ask terminal tests that need tmux (apt-get install tmux)\n');
if (!hasScript) process.stderr.write('SKIPPED: ask terminal tests that need script (util-linux)\n');

/** The pid of the `ovis ask` node process whose --seed is `marker` (not `script` or the shell, whose command lines hold the same words). */
async function ovisPid(marker: string): Promise<string> {
  const end = Date.now() + 30000;
  while (Date.now() < end) {
    const pid = spawnSync('pgrep', ['-f', `^[^ ]*node [^ ]*bin/ovis.js ask .*--seed ${marker}`], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
    if (pid) return pid;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no ovis process with --seed ${marker} started`);
}

withTmux('Ctrl-C typed in the terminal: exit 130, the answer so far and a cancelled done, the engine not killed', async () => {
  const out = join(work, 'out.jsonl');
  const t = new Term(`${ovisCommand(['ask', '--model', fixtureDir, '--json', '-n', '40000', '--temperature', '1', '--seed', '7', 'Count forever'])} > ${shellQuote(out)}`, { env: { NO_COLOR: '1' } });
  try {
    const end = Date.now() + 30000;
    while (!(existsSync(out) && readFileSync(out, 'utf8').includes('"type":"token"')) && Date.now() < end) await new Promise((r) => setTimeout(r, 50));
    t.keys('C-c');
    assert.is(await t.exitCode(), 130);
    assert.not.match(t.screen(), /killed by SIGINT|engine/);
    const events = jsonLines(readFileSync(out, 'utf8'));
    assert.equal(events.at(-1), { ...events.at(-1), type: 'done', finish_reason: 'cancelled' });
    assert.ok(events.slice(0, -1).every((e) => e.type === 'token'));
  } finally {
    t.kill();
  }
});

withScript('a pseudo-terminal of 0 columns: ask ends, the answer is printed, no redrawn line', async () => {
  const r = await underScript(`stty size; ${ovisCommand(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '8', photo, 'Describe this image.'])}`);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /^0 0\r?\n/, 'the terminal reports no size');
  assert.not.match(r.out, /\x1b\[K/, 'no line was redrawn');
  assert.ok(r.out.split('\n').slice(1).join('').trim().length > 0, 'the answer is there');
});

withScript('SIGTERM while generating on a 0-column terminal: the answer stops, exit 143', async () => {
  const marker = '4242421';
  const run = underScript(ovisCommand(['ask', '--model', fixtureDir, '-n', '40000', '--temperature', '1', '--seed', marker, 'Count forever']));
  const pid = await ovisPid(marker);
  await new Promise((r) => setTimeout(r, 1500));
  process.kill(Number(pid), 'SIGTERM');
  const r = await run;
  assert.is(r.code, 143, r.out.slice(-500));
});

withScript('on a sized terminal, stderr shows each phase with its elapsed time, and clears it for the answer', async () => {
  const r = await underScript(`stty cols 100 rows 30; ${ovisCommand(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '4', photo, 'Describe this image.'])}`);
  assert.is(r.code, 0, r.out);
  for (const phase of ['loading the model', `preparing ${photo}`, 'encoding the image (300 visual tokens)', 'reading the prompt']) {
    assert.match(r.out, new RegExp(`${phase.replace(/[()/.]/g, '\\$&')}[^\\r\\n]* · \\d+\\.\\d s`), phase);
  }
  assert.match(r.out, /\r\x1b\[K[^\r]*\S/, 'the line is cleared before the answer');
});

withScript('ask --each: Ctrl-C (SIGINT to the process group) stops at the current file, exit 130', async () => {
  const marker = '5151515';
  const run = underScript(`${ovisCommand(['ask', '--model', fixtureDir, '-n', '40000', '--temperature', '1', '--seed', marker, '--each', 'Count forever', photo, photo])} > ${shellQuote(join(work, 'each.jsonl'))}`);
  const pid = await ovisPid(marker);
  // Long enough for the model to load and the first file's answer to begin on a busy 2-core machine
  // (the answer is 40,000 tokens: it is still running when the signal comes).
  await new Promise((r) => setTimeout(r, 4000));
  const group = Number(spawnSync('ps', ['-o', 'pgid=', '-p', pid], { encoding: 'utf8' }).stdout.trim());
  process.kill(-group, 'SIGINT');
  const r = await run;
  assert.is(r.code, 130, r.out.slice(-500));
  const lines = jsonLines(readFileSync(join(work, 'each.jsonl'), 'utf8'));
  assert.is(lines.length, 1, 'the second file was not started');
  assert.is(lines[0].finish_reason, 'cancelled');
  assert.ok(lines[0].usage.completion_tokens > 0 && lines[0].answer.length > 0);
});

withScript('chat in a terminal of no size: plain lines, a question answered, /exit', async () => {
  const r = await underScript(ovisCommand(['chat', '--model', fixtureDir, '--temperature', '0', '-n', '4']), {
    typing: [{ ready: /^> /m, keys: 'Hello\r' }, { ready: /tok\/s[^\]]*\]\r?\n> /, keys: '/exit\r' }],
  });
  assert.is(r.code, 0, r.out.slice(-1000));
  assert.match(r.out, /ovis chat · tiny-ovis2\.5/);
  assert.not.match(r.out, /\x1b\[\d*[ABJ]/, 'nothing redrawn');
});

test.run();


// `ovis ask` in real terminals: Ctrl-C typed at the keyboard (the terminal signals the whole
// foreground process group), a pseudo-terminal that reports 0 columns, the phase line on stderr.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fixtureDir, jsonLines } from '../helpers/cli.js';
import { ovisCommand, shellQuote, Term, tmuxAvailable } from '../helpers/tmux.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-askterm-'));
test.after(() => rmSync(work, { recursive: true, force: true }));
const photo = join(fixtureDir, 'inputs', 'photo.jpg');

const hasTmux = tmuxAvailable();
const hasScript = spawnSync('script', ['--version']).status === 0;
if ((process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS) && (!hasTmux || !hasScript)) throw new Error('tmux and script (util-linux) are needed for the terminal tests');
const withTmux = hasTmux ? test : test.skip;
const withScript = hasScript ? test : test.skip;
if (!hasTmux) process.stderr.write('SKIPPED: ask terminal tests that need tmux (apt-get install tmux)\n');
if (!hasScript) process.stderr.write('SKIPPED: ask terminal tests that need script (util-linux)\n');

/** Runs a shell command under `script`: a pseudo-terminal, of 0×0 cells unless `stty` sets it. */
function underScript(command: string, timeoutMs = 60000): Promise<{ code: number | null; out: string }> {
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm-256color', NO_COLOR: '' } });
  let out = '';
  child.stdout!.on('data', (c: Buffer) => (out += c.toString('utf8')));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not end in ${timeoutMs} ms; output:\n${out.slice(-2000)}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
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
  const end = Date.now() + 30000;
  let pid = '';
  while (!pid && Date.now() < end) {
    // The node process itself, not `script` or the shell, whose command lines hold the same words.
    pid = spawnSync('pgrep', ['-f', `^[^ ]*node [^ ]*bin/ovis.js ask .*--seed ${marker}`], { encoding: 'utf8' }).stdout.trim().split('\n')[0];
    await new Promise((r) => setTimeout(r, 100));
  }
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

test.run();

// The estimate before a CPU encode, end to end through the real engine on the fixture model. The
// fixture's encode takes milliseconds, so the engine is told a slow speed ($OVIS_VISION_SPEED, which
// replaces its measurement at load): 0.005 GFLOP/s for GEMMs and attention makes the photo's 1,200
// patches (~0.78 GFLOP in the fixture's shapes) a "long" encode of about 2.6 minutes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { scriptAvailable, underScript } from '../helpers/pty.js';
import { ovisCommand, Term, tmuxAvailable } from '../helpers/tmux.js';

const photo = join(fixtureDir, 'inputs', 'photo.jpg');
const SLOW = { OVIS_VISION_SPEED: '0.005,0.005' };
const ask = (...extra: string[]) => ['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', ...extra, photo, 'Describe this image.'];
const NOTE = /^encoding the image \(1,200 patches\) will take about [\d.]+ (s|min) on this CPU; --max-pixels (\d+) \((\d+)·\3, fewer details\) would take about [\d.]+ s$/;

const hasScript = scriptAvailable();
const hasTmux = tmuxAvailable();
if ((process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS) && (!hasScript || !hasTmux)) throw new Error('script (util-linux) and tmux are needed for the terminal tests');
if (!hasScript) process.stderr.write('SKIPPED: the encode progress line test needs script (util-linux)\n');
if (!hasTmux) process.stderr.write('SKIPPED: the chat encode note test needs tmux\n');
const withScript = hasScript ? test : test.skip;
const withTmux = hasTmux ? test : test.skip;

test('not a terminal: one stderr line with the estimate and a --max-pixels; stdout holds only the answer', async () => {
  const plain = await runOvis(ask());
  assert.is(plain.code, 0, plain.stderr);
  assert.is(plain.stderr, '', 'a fast encode says nothing');
  const slow = await runOvis(ask(), { env: SLOW });
  assert.is(slow.code, 0, slow.stderr);
  assert.is(slow.stdout, plain.stdout, 'the answer is the same, and alone on stdout');
  const lines = slow.stderr.split('\n').filter(Boolean);
  assert.is(lines.length, 1, slow.stderr);
  const m = NOTE.exec(lines[0]);
  assert.ok(m, lines[0]);
  // Following the suggestion makes the estimate short: nothing more is said.
  const smaller = await runOvis(ask('--max-pixels', m![2]), { env: SLOW });
  assert.is(smaller.code, 0, smaller.stderr);
  assert.is(smaller.stderr, '', `--max-pixels ${m![2]} is estimated under the threshold`);
});

test('ask --each says it once for the batch, not once per file; --verbose logs every estimate', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '2', '--verbose', '--each', 'Describe this image.', photo, photo], { env: SLOW });
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout.trim().split('\n').length, 2, r.stdout);
  const lines = r.stderr.split('\n');
  assert.is(lines.filter((l) => NOTE.test(l)).length, 1, r.stderr);
  const estimates = lines.filter((l) => /^vision encode estimate: 1200 patches, [\d.]+ ms \(GEMM 0\.005 GFLOP\/s, attention 0\.005 GFLOP\/s measured at load\)$/.test(l));
  assert.is(estimates.length, 2, r.stderr);
});

test('ask --verbose: the estimate, the projection after the first layer and the time taken', async () => {
  const r = await runOvis(ask('--verbose'));
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /^vision encode: estimated \d+ ms before it, \d+ ms after the first layer; took \d+ ms$/m);
});

withScript('on a terminal: the note above the line, then the encode with its percentage and time left', async () => {
  const r = await underScript(`stty cols 160 rows 30; OVIS_VISION_SPEED=${SLOW.OVIS_VISION_SPEED} ${ovisCommand(ask())}`);
  assert.is(r.code, 0, r.out);
  assert.match(r.out, /encoding the image \(1,200 patches\) will take about [\d.]+ (s|min) on this CPU; --max-pixels \d+/);
  // Before the first layer the estimate speaks (minutes); then the engine's layer timing (milliseconds).
  assert.match(r.out, /encoding the image \(300 visual tokens\) · \d+% · ~[\d.]+ (s|min) left · \d+\.\d s/);
  assert.match(r.out, /encoding the image \(300 visual tokens\) · \d+% · (~[\d.]+ s left|almost done)/);
  assert.match(r.out, /\r\x1b\[K[^\r]*\S/, 'the line is cleared before the answer');
});

withTmux('chat (tmux): the long-encode note is a notice in the transcript, then the answer', async () => {
  const work = mkdtempSync(join(tmpdir(), 'ovis-encode-chat-'));
  copyFileSync(photo, join(work, 'photo.jpg'));
  const t = new Term(ovisCommand(['chat', '--model', fixtureDir, '--temperature', '0', '-n', '4']), {
    cwd: work, width: 200, env: { ...SLOW, XDG_STATE_HOME: join(work, 'state'), CI: 'true' },
  });
  try {
    await t.waitFor(/context 0\/40,960/);
    t.type('Describe photo.jpg');
    t.keys('Enter');
    const s = await t.waitFor(/tok\/s/);
    assert.match(s, /encoding the image \(1,200 patches\) will take about [\d.]+ (s|min) on this CPU; --max-pixels \d+/);
    t.keys('C-d');
    assert.is(await t.exitCode(), 0);
  } finally {
    t.kill();
    rmSync(work, { recursive: true, force: true });
  }
});

test.run();

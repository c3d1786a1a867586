// Ctrl-C before the first token (test/cli/interrupt.test.ts covers it mid-generation): during the
// prompt's prefill ovis cancels the request and exits 130 with nothing half-written; while the
// model is still loading it ends at once as a SIGINT death (status 130 in a shell) and no engine is
// left running. The signal goes to ovis alone here; see test/known-bugs/ for a terminal's Ctrl-C.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, jsonLines, root } from '../helpers/cli.js';
import { ended, engineOf } from '../helpers/processes.js';

// 20,000 words are 20,013 prompt positions: a prefill of about 5 s on the 2-core development
// machine (prefill_ms 4,753), so a Ctrl-C sent when the prompt is ready lands well before the
// first token even on a machine ten times faster.
const longPrompt = 'word '.repeat(20000);

interface Run { sent: boolean; code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; engine: number }

/** Starts `ovis ask`, sends SIGINT to it when `when` says so, and collects the result. */
function interrupted(args: string[], when: 'model-loading' | 'prompt-ready'): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'ask', '--model', fixtureDir, '--verbose', ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    let sent = false;
    const engine = engineOf(child.pid!);
    engine.catch(reject);
    const interrupt = () => {
      if (sent) return;
      sent = true;
      child.kill('SIGINT');
    };
    if (when === 'model-loading') engine.then(interrupt, () => {});
    child.stdout.on('data', (c: Buffer) => (stdout += c));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
      if (when === 'prompt-ready' && /^prompt: /m.test(stderr)) interrupt();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      engine.then((pid) => resolve({ sent, code, signal, stdout, stderr, engine: pid }), reject);
    });
    child.stdin.end(longPrompt);
  });
}

test('Ctrl-C during the prefill (--json): exit 130, a cancelled done with no tokens, nothing else', async () => {
  const r = await interrupted(['--json', '--max-new-tokens', '8'], 'prompt-ready');
  assert.ok(r.sent, r.stderr);
  assert.is(r.code, 130, r.stderr);
  assert.ok(r.stdout.endsWith('}\n'), 'whole lines only');
  const events = jsonLines(r.stdout);
  assert.is(events.length, 1, r.stdout);
  assert.is(events[0].type, 'done');
  assert.is(events[0].finish_reason, 'cancelled');
  assert.equal(events[0].usage, { prompt_tokens: 20013, completion_tokens: 0 });
  assert.match(r.stderr, /interrupted/);
  assert.ok(await ended(r.engine, 5000), 'the engine has exited');
});

test('Ctrl-C during the prefill (text): exit 130, empty stdout, the reason on stderr', async () => {
  const r = await interrupted(['--max-new-tokens', '8'], 'prompt-ready');
  assert.ok(r.sent, r.stderr);
  assert.is(r.code, 130, r.stderr);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /^ovis: interrupted/m);
  assert.ok(await ended(r.engine, 5000), 'the engine has exited');
});

test('Ctrl-C while the model loads: a SIGINT death (status 130 in a shell), no output, no engine left', async () => {
  const r = await interrupted(['--json', '--max-new-tokens', '8'], 'model-loading');
  assert.ok(r.sent);
  // before ovis listens for SIGINT, Node's default applies: the process dies of the signal, which a
  // shell reports as 128 + 2; a clean exit with 130 would do as well
  assert.ok(r.signal === 'SIGINT' || r.code === 130, `code ${r.code}, signal ${r.signal}: ${r.stderr}`);
  assert.is(r.stdout, '');
  assert.ok(await ended(r.engine, 5000), 'the engine exits once ovis is gone');
});

test.run();

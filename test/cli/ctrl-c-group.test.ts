// Ctrl-C as a terminal sends it: SIGINT to the whole foreground process group (the engine runs in
// a group of its own, so only ovis gets it and cancels), during the prefill and mid-generation; and
// a second Ctrl-C that kills an engine which does not answer the cancel still ends as an
// interruption (exit 130), not as an engine failure.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, jsonLines, root } from '../helpers/cli.js';
import { ended, engineOf, isRunning } from '../helpers/processes.js';

interface Run { code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string; engine: number }

/** `ovis ask --json` generating for a long time; `onFirstToken` runs once tokens flow. */
function generating(onFirstToken: (ovis: number, engine: number) => void, opts: { ownGroup?: boolean; input?: string; onPromptReady?: boolean } = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'ask', '--model', fixtureDir, '--json', '--verbose', '--max-new-tokens', '40000', '--temperature', '1', '--seed', '1', 'Count forever'],
      { stdio: ['pipe', 'pipe', 'pipe'], detached: opts.ownGroup, env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: '1' } });
    let stdout = '';
    let stderr = '';
    let fired = false;
    const engine = engineOf(child.pid!);
    engine.catch(reject);
    const fire = () => {
      if (fired) return;
      fired = true;
      engine.then((e) => onFirstToken(child.pid!, e));
    };
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
      if (!opts.onPromptReady && stdout.includes('"type":"token"')) fire();
    });
    child.stderr.on('data', (c: Buffer) => {
      stderr += c;
      if (opts.onPromptReady && /^prompt: /m.test(stderr)) fire();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      engine.then(async (e) => {
        // whatever happened, leave no engine behind (a stopped one would wait forever)
        if (isRunning(e)) {
          process.kill(e, 'SIGKILL');
          await ended(e, 5000);
        }
        resolve({ code, signal, stdout, stderr, engine: e });
      }, reject);
    });
    child.stdin.end(opts.input ?? '');
  });
}

function assertInterrupted(r: Run) {
  assert.is(r.code, 130, `exit ${r.code} (signal ${r.signal}); stderr: ${r.stderr}`);
  assert.match(r.stderr, /interrupted/);
  assert.not.match(r.stderr, /engine was killed/);
  assert.ok(jsonLines(r.stdout).every((e) => e.type === 'token' || e.type === 'done'), 'no error event');
}

test('a terminal Ctrl-C (SIGINT to the process group) mid-generation exits 130', async () => {
  const r = await generating((ovis) => process.kill(-ovis, 'SIGINT'), { ownGroup: true });
  assertInterrupted(r);
});

test('a terminal Ctrl-C during the prefill exits 130', async () => {
  const r = await generating((ovis) => process.kill(-ovis, 'SIGINT'), { ownGroup: true, input: 'word '.repeat(20000), onPromptReady: true });
  assertInterrupted(r);
});

test('Ctrl-C twice kills an engine that does not answer the cancel, and exits 130', async () => {
  const r = await generating((ovis, engine) => {
    process.kill(engine, 'SIGSTOP'); // an engine stuck in a long step: the cancel goes unanswered
    process.kill(ovis, 'SIGINT');
    setTimeout(() => process.kill(ovis, 'SIGINT'), 300);
  });
  assert.not.ok(isRunning(r.engine), 'the engine was killed');
  assertInterrupted(r);
});

test.run();

// Pipes: a reader that goes away (`ovis ask … | head -1`) stops generation: ovis exits 0 soon
// after, quietly (no stack trace), and leaves no engine running.
//
// "Soon" is a bound that an uncancelled run cannot meet: 40,000 tokens of this fixture took 194 s
// on the 2-core development machine (`ovis ask --model test/fixtures/tiny-ovis2.5 --max-new-tokens
// 40000 --seed 3 --json Hi`: decode_ms 193,898, finish_reason "length", so seed 3 samples no stop
// token), about 4.8 ms a token. 15 s from the pipe closing to the exit leaves room for a slow,
// shared machine and for the engine's 2 s shutdown grace, and a machine ten times faster would
// still need 19 s to generate them all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, root } from '../helpers/cli.js';
import { engineOf, isRunning } from '../helpers/processes.js';

const BOUND_MS = 15_000;

test('a closed stdout cancels generation: exit 0 within 15 s, no noise, no engine left', async () => {
  const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'ask', '--model', fixtureDir, '--max-new-tokens', '40000', '--seed', '3', 'Hi'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const engine = await engineOf(child.pid!);
  let closedAt = 0;
  let killer: NodeJS.Timeout | undefined;
  child.stdout.once('data', () => {
    child.stdout.destroy();
    closedAt = performance.now();
    // past the bound the test has failed: end both processes rather than wait minutes
    killer = setTimeout(() => {
      child.kill('SIGKILL');
      process.kill(engine, 'SIGKILL');
    }, 2 * BOUND_MS);
  });
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  clearTimeout(killer);
  const afterClose = performance.now() - closedAt;
  assert.ok(closedAt > 0, 'an answer started before the pipe closed');
  assert.ok(afterClose < BOUND_MS, `ovis ran ${afterClose.toFixed(0)} ms after its reader went away`);
  assert.is(code, 0, stderr);
  assert.not.match(stderr, /EPIPE|Error/);
  assert.not.ok(isRunning(engine), 'the engine still runs after ovis exited');
});

test.run();

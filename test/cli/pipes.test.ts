// Pipes: a reader that goes away (`ovis ask … | head -1`) stops generation quietly (exit 0, no
// stack trace), and stdout carries nothing but the answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, root } from '../helpers/cli.js';

test('a closed stdout cancels generation and exits 0 without noise', async () => {
  const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'ask', '--model', fixtureDir, '--max-new-tokens', '40000', '--seed', '3', 'Hi'], { stdio: ['pipe', 'pipe', 'pipe'] });
  child.stdin.end();
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  child.stdout.once('data', () => child.stdout.destroy());
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.is(code, 0, stderr);
  assert.not.match(stderr, /EPIPE|Error/);
});

test.run();

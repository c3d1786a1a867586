// The CLI's handling of engine faults, with a fake engine (test/engine/fake-engine.mjs): a crash,
// garbage on the engine's stdout, an engine that dies before the handshake.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { EngineProcess } from '../../src/engine/engine-process.js';
import { EngineError } from '../../src/errors.js';
import { fixtureDir, runOvis } from '../helpers/cli.js';

const fake = join(import.meta.dirname, 'fake-engine.mjs');
const env = (mode: string) => ({ ...process.env, FAKE_ENGINE_MODE: mode });

test('an engine crash mid-request fails the request with its last stderr lines', async () => {
  const engine = await EngineProcess.start({ binary: fake, env: env('crash-on-generate') });
  await engine.loadModel('/x', 'auto');
  const { done } = engine.generate({ session: 's', keep: 0, media: [], max_new_tokens: 1, sampling: { temperature: 0, top_k: 0, top_p: 1, repetition_penalty: 1, seed: 0 }, stop_ids: [], top_logprobs: 0 }, new Int32Array([1]), [], () => {});
  const err = await done.then(() => undefined, (e) => e);
  assert.ok(err instanceof EngineError);
  assert.match(err.message, /exited with status 139/);
  assert.match(err.message, /segmentation fault in the decoder/);
});

test('garbage right after the handshake (same chunk) fails the next request, not the handshake', async () => {
  const engine = await EngineProcess.start({ binary: fake, env: env('garbage') });
  const err = await engine.loadModel('/x', 'auto').then(() => undefined, (e) => e);
  assert.ok(err instanceof EngineError);
  assert.match(err.message, /unreadable frame/);
});

test('an engine that exits before the handshake fails start() with its message', async () => {
  const err = await EngineProcess.start({ binary: fake, env: env('exit-at-start') }).then(() => undefined, (e) => e);
  assert.ok(err instanceof EngineError);
  assert.match(err.message, /cannot start \(library missing\)/);
});

test('ovis ask exits 5 and shows the engine message when the engine crashes', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, 'Hi'], { env: { OVIS_ENGINE: fake, FAKE_ENGINE_MODE: 'crash-on-generate' } });
  assert.is(r.code, 5);
  assert.match(r.stderr, /segmentation fault in the decoder/);
  assert.is(r.stdout, '');
});

test.run();

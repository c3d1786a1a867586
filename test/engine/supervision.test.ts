// The CLI's handling of engine faults, with a fake engine (test/engine/fake-engine.mjs): a crash,
// garbage on the engine's stdout, an engine that dies before the handshake, a GPU that faults.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { join } from 'node:path';
import { ENGINE_EXIT_DEVICE_FAULT, EngineProcess, deviceFaultMessage } from '../../src/engine/engine-process.js';
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

const greedy = { temperature: 0, top_k: 0, top_p: 1, repetition_penalty: 1, seed: 0 };
const ask = (engine: EngineProcess) =>
  engine.generate({ session: 's', keep: 0, media: [], max_new_tokens: 1, sampling: greedy, stop_ids: [], top_logprobs: 0 }, new Int32Array([1]), [], () => {}).done;

test('a device fault (device_error, then exit 75) fails the request with "the GPU faulted …; run the command again"', async () => {
  const engine = await EngineProcess.start({ binary: fake, env: env('gpu-fault') });
  await engine.loadModel('/x', 'cuda');
  const err = await ask(engine).then(() => undefined, (e) => e);
  assert.ok(err instanceof EngineError);
  assert.is(err.message, 'the GPU faulted (replaying the decode graph: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered)); run the command again to restart the engine');
  assert.is(err.code, 'device_error');
  assert.not.ok(engine.running);
  // A later request on the dead engine says the same.
  const again = await ask(engine).then(() => undefined, (e) => e);
  assert.match(again.message, /^the GPU faulted \(.*\); run the command again to restart the engine$/);
});

test('a device error the engine survives (out of memory) is reported as it is, and the engine keeps running', async () => {
  const engine = await EngineProcess.start({ binary: fake, env: env('gpu-oom') });
  await engine.loadModel('/x', 'cuda');
  const err = await ask(engine).then(() => undefined, (e) => e);
  assert.ok(err instanceof EngineError);
  assert.match(err.message, /^engine: cannot allocate 2\.000 GiB on the GPU: .*OUT_OF_MEMORY.* \(device_error\)$/);
  assert.ok(engine.running);
  await engine.close();
});

test('the message of a device fault without its detail', () => {
  assert.is(deviceFaultMessage(undefined), `the GPU faulted (the engine exited with status ${ENGINE_EXIT_DEVICE_FAULT}); run the command again to restart the engine`);
});

test('ovis ask exits 5 and says the GPU faulted and to run the command again', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, 'Hi'], { env: { OVIS_ENGINE: fake, FAKE_ENGINE_MODE: 'gpu-fault' } });
  assert.is(r.code, 5);
  assert.match(r.stderr, /the GPU faulted \(replaying the decode graph: CUDA_ERROR_ILLEGAL_ADDRESS.*\); run the command again to restart the engine/);
  assert.is(r.stdout, '');
});

test.run();

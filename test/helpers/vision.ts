// Shared by the CLI vision tests: the fixture's vision cases run through `ovis ask` and compared
// with the reference. Tolerances (fixture README): from the image files, logits within 2e-3 of
// the reference, so the first token's log-probability within 3e-3; greedy ids equal up to the
// first top-2 gap under 0.02.
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from './cli.js';
import { caseOf, comparableIds, logSoftmaxAt } from './reference.js';

export const input = (f: string) => join(fixtureDir, 'inputs', f);

export const hasFfmpeg = spawnSync('ffmpeg', ['-version']).status === 0;

/** `ovis ask` options for a case: greedy, 8 tokens, JSON, the case's pixel budget. */
export function greedyArgs(name: string): string[] {
  const c = caseOf(name);
  return ['ask', '--model', fixtureDir, '--temperature', '0', '--max-new-tokens', '8', '--json', '--min-pixels', String(c.min_pixels), '--max-pixels', String(c.max_pixels)];
}

/** The text of the case's last user turn. */
export function questionOf(name: string): string {
  const content = caseOf(name).messages.at(-1).content as any[];
  return content.find((i) => i.type === 'text').text;
}

/** Runs `ovis ask` and checks ids, first log-probability and prompt length against the case. */
export async function expectReference(name: string, args: string[], opts: { input?: Buffer } = {}) {
  const r = await runOvis(args, opts);
  assert.is(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  const tokens = events.filter((e) => e.type === 'token');
  const want = comparableIds(name);
  assert.equal(tokens.slice(0, want.length).map((t) => t.id), want, `${name} greedy ids`);
  const lp = logSoftmaxAt(name, want[0]);
  assert.ok(Math.abs(tokens[0].logprob - lp) < 3e-3, `${name} first logprob ${tokens[0].logprob} vs ${lp}`);
  const done = events.at(-1);
  assert.is(done.usage.prompt_tokens, caseOf(name).num_ids, `${name} prompt length`);
  return done;
}

/** Writes the fixture's frames as a lossless FFV1 video at 4 fps (README: same pixels) to `path`. */
export function makeFramesVideo(path: string): string {
  if (!hasFfmpeg) throw new Error('ffmpeg is needed for the video tests (.ci/run installs it)');
  const made = spawnSync('ffmpeg', ['-y', '-v', 'error', '-framerate', '4', '-start_number', '0', '-i', join(fixtureDir, 'inputs', 'frame%d.png'), '-c:v', 'ffv1', path]);
  assert.is(made.status, 0, made.stderr.toString());
  return path;
}

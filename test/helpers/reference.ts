// The fixture's reference outputs: greedy ids under the top-2 gap rule, and log-probabilities.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './cli.js';
import { readSafetensors, toNumbers } from './safetensors.js';

export const expected = readSafetensors(join(fixtureDir, 'expected.safetensors'));
export const cases = JSON.parse(readFileSync(join(fixtureDir, 'cases.json'), 'utf8')).cases as any[];
export const caseOf = (name: string) => cases.find((c) => c.name === name);

/** Reference ids up to and including the first step whose top-2 gap is under `gap` (from there on a
 * float difference may legitimately pick the other token). */
export function comparableIds(name: string, gap = 0.02): number[] {
  const ids = toNumbers(expected.get(`${name}.greedy_ids`)!);
  const gaps: number[] = caseOf(name).greedy_top2_gaps;
  const cut = gaps.findIndex((g) => g < gap);
  return cut < 0 ? ids : ids.slice(0, cut + 1);
}

/** log_softmax(last_logits)[id] in f64. */
export function logSoftmaxAt(name: string, id: number): number {
  const z = expected.get(`${name}.last_logits`)!.data as Float32Array;
  let max = -Infinity;
  for (const v of z) max = Math.max(max, v);
  let sum = 0;
  for (const v of z) sum += Math.exp(v - max);
  return z[id] - max - Math.log(sum);
}

// The sampling flags reach the engine and do what they say, seen in the answers themselves:
// --seed, --temperature, --top-k, --top-p and --repetition-penalty, on the fixture's text case
// (its greedy reference: 66480 146328 133947 then 100965 five times, every top-2 gap ≥ 0.07).
// Sampling at temperature 1 with top-k and top-p off draws from all 151,936 tokens of a random
// model, so two different draws of 8 tokens agreeing by chance is out of the question.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { caseOf, comparableIds } from '../helpers/reference.js';

const prompt = caseOf('text').messages[0].content as string;
const reference = comparableIds('text');

/** The ids `ovis ask` generates for the text case with these flags (8 tokens). */
async function idsWith(flags: string[]): Promise<number[]> {
  const r = await runOvis(['ask', '--model', fixtureDir, '--json', '--max-new-tokens', '8', ...flags, prompt]);
  assert.is(r.code, 0, r.stderr);
  return jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id);
}

/** Unrestricted sampling at temperature 1 (no top-k, no top-p, no penalty). */
const wide = ['--temperature', '1', '--top-k', '0', '--top-p', '1', '--repetition-penalty', '1'];

test('the fixture case is the one described above', () => {
  assert.equal(reference, [66480, 146328, 133947, 100965, 100965, 100965, 100965, 100965]);
});

test('the same --seed repeats a sampled answer; another seed changes it', async () => {
  const [a, again, b] = await Promise.all([idsWith([...wide, '--seed', '1']), idsWith([...wide, '--seed', '1']), idsWith([...wide, '--seed', '2'])]);
  assert.is(a.length, 8);
  assert.equal(again, a);
  assert.not.equal(b, a);
  assert.not.equal(a, reference, 'sampling is on');
});

// The same draw without the restriction is not greedy (seed 1: the test above).
test('--top-k 1 leaves only the best token: the greedy answer', async () => {
  assert.equal(await idsWith([...wide, '--top-k', '1', '--seed', '1']), reference);
});

test('--top-p tiny keeps only the most likely token: the greedy answer', async () => {
  assert.equal(await idsWith([...wide, '--top-p', '0.000001', '--seed', '1']), reference);
});

test('--temperature 0 is the greedy reference (with the seed that samples otherwise)', async () => {
  assert.equal(await idsWith(['--temperature', '0', '--seed', '1']), reference);
});

test('a small --temperature sharpens sampling to the greedy answer (the value reaches the engine)', async () => {
  // the smallest top-2 gap is 0.072: at t = 0.001 the runner-up is e^-72 as likely
  assert.equal(await idsWith([...wide, '--temperature', '0.001', '--seed', '1']), reference);
});

test('--repetition-penalty stops the greedy answer from repeating a token it generated', async () => {
  // without it, greedy repeats 100965 (the --temperature 0 test above)
  const penalised = await idsWith(['--temperature', '0', '--repetition-penalty', '10']);
  // up to the first repeat nothing generated is penalised in a way that changes the argmax
  assert.equal(penalised.slice(0, 4), reference.slice(0, 4));
  assert.is.not(penalised[4], 100965, 'the token already generated at step 3 is not picked again');
});

test.run();

// --think-budget (model-spec.md §8.3): thoughts cut at the budget, the reference's early-stop
// text appended as forced tokens, and the answer continued from the engine's KV cache exactly as
// a fresh generation of the whole sequence would. Accounting (ours, in --help and the man page):
// -n bounds the tokens the model generates; the 24 forced tokens come on top of it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EngineProcess } from '../../src/engine/engine-process.js';
import { PromptBuilder } from '../../src/prompt/index.js';
import { EARLY_STOP_IDS } from '../../src/session/think-budget.js';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { caseOf, comparableIds } from '../helpers/reference.js';

const question = caseOf('think').messages[0].content;
const budgeted = (extra: string[]) => runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '--json', '--think-budget', '4', ...extra, question]);

test('the early-stop ids are the tokenizer\'s encoding of the reference text', async () => {
  const pb = await PromptBuilder.load(fixtureDir);
  const text = '\n\nConsidering the limited time by the user, I have to give the solution based on the thinking directly now.\n</think>\n\n';
  assert.equal(pb.tokenizer.encodeText(text), EARLY_STOP_IDS);
});

test('over budget: 4 thinking tokens, 24 forced, then the answer continues from the cache', async () => {
  const r = await budgeted(['--max-new-tokens', '40']);
  assert.is(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  const tokens = events.filter((e) => e.type === 'token');
  // 4 sampled thoughts + 36 sampled answer tokens = -n 40, with the 24 forced ids between them.
  assert.is(tokens.length, 64);
  assert.is(tokens.filter((t) => !t.forced).length, 40);
  assert.equal(tokens.slice(0, 4).map((t) => t.id), comparableIds('think').slice(0, 4));
  const forced = tokens.slice(4, 28);
  assert.equal(forced.map((t) => t.id), EARLY_STOP_IDS);
  assert.ok(forced.every((t) => t.forced === true && t.logprob === null));
  assert.equal(tokens.slice(0, 27).map((t) => t.channel), Array(27).fill('thinking'));
  assert.ok(tokens.slice(27).every((t) => t.channel === 'answer'));
  assert.ok(tokens.slice(28).every((t) => typeof t.logprob === 'number' && !t.forced));
  assert.is(events.at(-1).usage.completion_tokens, 64);

  // Phase 2 equals greedy decoding of prompt + thoughts + early-stop text in a fresh session.
  const pb = await PromptBuilder.load(fixtureDir);
  const { ids: prompt } = pb.encode([{ role: 'user', content: question }], { enableThinking: true, grids: [], kinds: [] });
  const engine = await EngineProcess.start();
  await engine.loadModel(fixtureDir, 'cpu');
  const whole = Int32Array.from([...prompt, ...tokens.slice(0, 28).map((t) => t.id)]);
  const fresh: number[] = [];
  const { done } = engine.generate({ session: 'fresh', keep: 0, media: [], max_new_tokens: 12, sampling: { temperature: 0, top_k: 0, top_p: 1, repetition_penalty: 1, seed: 0 }, stop_ids: [151645, 151643], top_logprobs: 0 }, whole, [], (t) => fresh.push(t.token));
  await done;
  await engine.close();
  assert.equal(tokens.slice(28, 40).map((t) => t.id), fresh);
});

test('a small max-new-tokens still leaves the answer its tokens (the forced text does not eat them)', async () => {
  // -n 2 within the budget of 4 is raised to 4 + min(1024, 2) = 6 as the reference's chat() does:
  // 4 thoughts, the 24 forced ids, then 2 answer tokens (before the fix the answer was empty).
  const r = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '--think-budget', '4', '--max-new-tokens', '2', question]);
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stderr, /Considering the limited time by the user/);
  assert.ok(r.stdout.trim().length > 0, 'the answer is not empty');
  const j = await budgeted(['--max-new-tokens', '2']);
  const tokens = jsonLines(j.stdout).filter((e) => e.type === 'token');
  assert.is(tokens.length, 4 + 24 + 2);
  assert.equal(tokens.slice(28).map((t) => t.channel), ['answer', 'answer']);
  // Text mode prints exactly the answer channel's text of those two tokens.
  const answer = tokens.slice(28).map((t) => t.text).join('').trim();
  assert.is(r.stdout, `${answer}\n`);
});

test.run();

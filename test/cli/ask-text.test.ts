// `ovis ask` end to end through the real engine process on the reference fixture (text prompts).
// Tolerances: the fixture README's 1e-3 on logits ⇒ log-probabilities within 2e-3.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { textPromptIds } from '../helpers/prompt.js';
import { caseOf, comparableIds, logSoftmaxAt } from '../helpers/reference.js';
import { withRecorder } from '../helpers/wire.js';

const greedy = ['ask', '--model', fixtureDir, '--temperature', '0', '--max-new-tokens', '8', '--json'];

test('text case: greedy ids and first-token log-probabilities equal the reference', async () => {
  const r = await runOvis([...greedy, '--top-logprobs', '5', caseOf('text').messages[0].content]);
  assert.is(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  const tokens = events.filter((e) => e.type === 'token');
  const want = comparableIds('text');
  assert.equal(tokens.slice(0, want.length).map((t) => t.id), want);
  assert.ok(Math.abs(tokens[0].logprob - logSoftmaxAt('text', want[0])) < 2e-3, `logprob ${tokens[0].logprob}`);
  const top = tokens[0].top_logprobs as any[];
  assert.equal(top.map((t) => t.id), caseOf('text').first_top5);
  for (const t of top) assert.ok(Math.abs(t.logprob - logSoftmaxAt('text', t.id)) < 2e-3, `top ${t.id}`);
  assert.ok(tokens.every((t) => t.channel === 'answer'));
  const done = events.at(-1);
  assert.is(done.type, 'done');
  assert.is(done.finish_reason, 'length');
  assert.equal(done.usage, { prompt_tokens: caseOf('text').num_ids, completion_tokens: 8 });
  assert.type(done.timings.prefill_ms, 'number');
});

test('think case: thinking prompt gives the reference ids, on the thinking channel', async () => {
  const r = await runOvis([...greedy, '--think', caseOf('think').messages[0].content]);
  assert.is(r.code, 0, r.stderr);
  const tokens = jsonLines(r.stdout).filter((e) => e.type === 'token');
  const want = comparableIds('think');
  assert.equal(tokens.slice(0, want.length).map((t) => t.id), want);
  assert.ok(tokens.every((t) => t.channel === 'thinking'), 'no </think> was generated, so all is thinking');
});

test('plain text output is the decoded answer alone on stdout', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '--max-new-tokens', '8', caseOf('text').messages[0].content]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `${caseOf('text').greedy_text.trim()}\n`);
});

test('a prompt on stdin gives the same answer as the same prompt in arguments', async () => {
  const prompt = caseOf('text').messages[0].content;
  const r = await runOvis(greedy, { input: `${prompt}\n` });
  assert.is(r.code, 0, r.stderr);
  const ids = jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id);
  assert.equal(ids.slice(0, 8), comparableIds('text'));
});

test('the same seed samples the same tokens', async () => {
  const args = ['ask', '--model', fixtureDir, '--temperature', '1', '--top-k', '50', '--seed', '7', '--max-new-tokens', '6', '--json', 'Hello'];
  const a = await runOvis(args);
  const b = await runOvis(args);
  assert.is(a.code, 0, a.stderr);
  const ids = (r: typeof a) => jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id);
  assert.equal(ids(a), ids(b));
  assert.is(ids(a).length, 6);
});

test('--system puts a system turn before the user turn: the exact ids of the chat template', async () => {
  const system = 'You are a terse assistant.';
  const want = await textPromptIds([{ role: 'system', content: system }, { role: 'user', content: 'Hi' }]);
  const plain = await textPromptIds([{ role: 'user', content: 'Hi' }]);
  assert.ok(want.length > plain.length + 5, 'the system turn adds tokens');
  await withRecorder(async (rec) => {
    const r = await runOvis([...greedy, '--max-new-tokens', '1', '--system', system, 'Hi'], { env: rec.env });
    assert.is(r.code, 0, r.stderr);
    assert.equal(rec.generates()[0].ids, want, 'ids sent to the engine');
    assert.is(jsonLines(r.stdout).at(-1).usage.prompt_tokens, want.length);
  });
});

test.run();

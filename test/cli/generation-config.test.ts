// The model's generation_config.json supplies the sampling defaults and stop ids (model-spec.md
// §3.5): each value reaches the engine, seen in the answers of a copy of the fixture with an edited
// file, and flags override it. The text case's greedy reference is 66480 146328 133947 then 100965
// five times; at temperature 1 with top-k and top-p off a random model's draw is never greedy.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { withModel } from '../helpers/model-copy.js';
import { caseOf, comparableIds } from '../helpers/reference.js';
import { withRecorder } from '../helpers/wire.js';

const prompt = caseOf('text').messages[0].content as string;
const reference = comparableIds('text');
const fixtureConfig = JSON.parse(readFileSync(join(fixtureDir, 'generation_config.json'), 'utf8'));

/** Tokens and done event of `ovis ask` for the text case on `model` (8 tokens, given seed). */
async function ask(model: string, flags: string[] = [], env?: Record<string, string>) {
  const r = await runOvis(['ask', '--model', model, '--json', '--max-new-tokens', '8', ...flags, prompt], { env });
  assert.is(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  return { ids: events.filter((e) => e.type === 'token').map((t) => t.id), done: events.at(-1) };
}

/** The fixture with generation_config.json replaced by the fixture's values overridden by `edit`. */
function withConfig<T>(edit: Record<string, unknown>, fn: (model: string) => Promise<T>): Promise<T> {
  return withModel({ 'generation_config.json': JSON.stringify({ ...fixtureConfig, ...edit }) }, fn);
}

/** Sampling that is wide open unless the config under test narrows it. */
const open = { do_sample: true, temperature: 1, top_k: 0, top_p: 1, repetition_penalty: 1 };

test("the fixture's own values are what the engine is sent", async () => {
  await withRecorder(async (rec) => {
    await ask(fixtureDir, ['--seed', '5'], rec.env);
    const [sent] = rec.generates();
    assert.equal(sent.header.sampling, { temperature: 0.6, top_k: 20, top_p: 0.95, repetition_penalty: 1.05, seed: 5 });
    assert.equal(sent.header.stop_ids, [151645, 151643]);
  });
});

test('do_sample false: greedy by default; --temperature still samples', async () => {
  await withConfig({ do_sample: false }, async (model) => {
    const [a, flagged] = await Promise.all([ask(model, ['--seed', '1']), ask(model, ['--temperature', '1', '--top-k', '0', '--seed', '1'])]);
    assert.equal(a.ids, reference);
    assert.not.equal(flagged.ids, reference);
  });
});

test('top_k 1 in the file: sampling gives the greedy answer; --top-k 0 overrides it', async () => {
  await withConfig({ ...open, top_k: 1 }, async (model) => {
    const [k1, overridden] = await Promise.all([ask(model, ['--seed', '1']), ask(model, ['--top-k', '0', '--seed', '1'])]);
    assert.equal(k1.ids, reference);
    assert.not.equal(overridden.ids, reference);
  });
});

test('top_p tiny in the file: sampling gives the greedy answer', async () => {
  await withConfig({ ...open, top_p: 0.000001 }, async (model) => {
    assert.equal((await ask(model, ['--seed', '1'])).ids, reference);
  });
});

test('temperature in the file: 0.001 gives the greedy answer (the released 0.6 would not)', async () => {
  await withConfig({ ...open, temperature: 0.001 }, async (model) => {
    assert.equal((await ask(model, ['--seed', '1'])).ids, reference);
  });
});

test('repetition_penalty in the file applies when sampling (top_k 1: the greedy path, penalised)', async () => {
  await withConfig({ ...open, top_k: 1, repetition_penalty: 10 }, async (model) => {
    const { ids } = await ask(model, ['--seed', '1']);
    assert.equal(ids.slice(0, 4), reference.slice(0, 4));
    assert.is.not(ids[4], 100965, 'the token generated at step 3 is not repeated');
  });
});

test('eos_token_id in the file is a stop id: generation stops at it', async () => {
  await withConfig({ do_sample: false, eos_token_id: [100965] }, async (model) => {
    const { ids, done } = await ask(model);
    assert.equal(ids, reference.slice(0, 4), 'ends with the stop token, the 4th of the reference');
    assert.is(done.finish_reason, 'stop');
    assert.is(done.usage.completion_tokens, 4);
  });
});

test.run();

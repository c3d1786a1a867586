// Options of `ovis ask` seen end to end: --verbose (diagnostics on stderr only), --no-think (the
// default: the empty think block of the chat template, as the reference's text case), and
// $OVIS_MODEL in place of --model.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { caseOf, comparableIds, expected } from '../helpers/reference.js';
import { toNumbers } from '../helpers/safetensors.js';
import { withRecorder } from '../helpers/wire.js';

const textPrompt = caseOf('text').messages[0].content as string;
const greedy = ['--temperature', '0', '--max-new-tokens', '8'];
const noModel = { OVIS_MODEL: undefined };

test('--verbose: engine lines and timings on stderr, stdout unchanged', async () => {
  const args = ['ask', '--model', fixtureDir, ...greedy, textPrompt];
  const [quiet, verbose] = await Promise.all([runOvis(args), runOvis([...args, '--verbose'])]);
  assert.is(quiet.code, 0, quiet.stderr);
  assert.is(verbose.code, 0, verbose.stderr);
  assert.is(quiet.stderr, '', 'nothing on stderr without --verbose');
  assert.is(verbose.stdout, quiet.stdout, 'stdout is the answer alone either way');
  assert.is(verbose.stdout, `${caseOf('text').greedy_text.trim()}\n`);
  const lines = verbose.stderr.trimEnd().split('\n');
  assert.ok(lines.some((l) => /^engine: ovis-engine: loaded .*tiny-ovis2\.5 on cpu/.test(l)), 'the engine\'s own log lines, prefixed');
  assert.ok(lines.some((l) => /^engine \d+\.\d+\.\d+: cpu on /.test(l)), 'backend and device');
  assert.ok(lines.includes(`prompt: ${caseOf('text').num_ids} positions, 0 media`), 'prompt size');
  assert.ok(lines.some((l) => /^8 tokens \(length\); vision [\d.]+ ms, prefill [\d.]+ ms, first token [\d.]+ ms, decode [\d.]+ ms$/.test(l)), 'timings');
});

test('--verbose --json: stdout holds only the JSON events', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, ...greedy, '--json', '--verbose', textPrompt]);
  assert.is(r.code, 0, r.stderr);
  const events = jsonLines(r.stdout);
  assert.equal(events.map((e) => e.type), [...Array(8).fill('token'), 'done']);
  assert.equal(events.slice(0, 8).map((e) => e.id), comparableIds('text'));
  assert.match(r.stderr, /prefill [\d.]+ ms/);
});

test('--no-think is the default: the empty think block, the reference text case ids', async () => {
  const reference = toNumbers(expected.get('text.input_ids')!);
  assert.ok(caseOf('text').prompt.endsWith('<think>\n\n</think>\n\n'), 'the reference prompt ends with the empty think block');
  const base = ['ask', '--model', fixtureDir, ...greedy, '--json'];
  // one recorder per run, so that the three can run side by side
  await Promise.all([[], ['--no-think'], ['--think', '--no-think']].map((flags) => withRecorder(async (rec) => {
    const r = await runOvis([...base, ...flags, textPrompt], { env: rec.env });
    assert.is(r.code, 0, r.stderr);
    assert.equal(jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id), comparableIds('text'), flags.join(' '));
    assert.equal(rec.generates()[0].ids, reference, `ids sent with [${flags.join(' ')}]`);
  })));
});

test('--think drops the empty think block: the reference think case ids', async () => {
  await withRecorder(async (rec) => {
    const r = await runOvis(['ask', '--model', fixtureDir, ...greedy, '--think', caseOf('think').messages[0].content], { env: rec.env });
    assert.is(r.code, 0, r.stderr);
    assert.equal(rec.generates()[0].ids, toNumbers(expected.get('think.input_ids')!));
  });
});

test('$OVIS_MODEL stands in for --model; --model wins over it', async () => {
  const [fromEnv, overridden] = await Promise.all([
    runOvis(['ask', ...greedy, '--json', textPrompt], { env: { OVIS_MODEL: fixtureDir } }),
    runOvis(['ask', '--model', fixtureDir, ...greedy, '--json', textPrompt], { env: { OVIS_MODEL: '/nonexistent/ovis-model' } }),
  ]);
  for (const r of [fromEnv, overridden]) {
    assert.is(r.code, 0, r.stderr);
    assert.equal(jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id), comparableIds('text'));
  }
  const missing = await runOvis(['ask', ...greedy, textPrompt], { env: { OVIS_MODEL: '/nonexistent/ovis-model' } });
  assert.is(missing.code, 4, missing.stderr);
  assert.match(missing.stderr, /\/nonexistent\/ovis-model/);
  // neither: the default model, which the test's empty cache does not have
  const none = await runOvis(['ask', ...greedy, textPrompt], { env: noModel });
  assert.is(none.code, 4, none.stderr);
  assert.match(none.stderr, /ovis pull AIDC-AI\/Ovis2\.5-2B/);
});

test.run();

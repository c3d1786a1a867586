// The sampling values the CLI sends agree with what the engine accepts and does (docs/protocol.md):
// a temperature below 1e-5 is greedy on both sides, and --repetition-penalty has the engine's range.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { GREEDY_TEMPERATURE, samplingFrom } from '../../src/cli/sampling.js';
import { addGenerationOptions } from '../../src/cli/ask-options.js';
import { Command } from 'commander';

const defaults = { temperature: 0.6, topK: 20, topP: 0.95, repetitionPenalty: 1.05, stopIds: [151645] };

test('a temperature below 1e-5 is greedy: sent as 0, with no default repetition penalty', () => {
  for (const t of [0, 1e-38, 1e-6, GREEDY_TEMPERATURE / 2]) {
    const s = samplingFrom({ temperature: t, seed: 1 }, defaults);
    assert.is(s.temperature, 0, `temperature ${t}`);
    assert.is(s.repetition_penalty, 1, `temperature ${t}`);
  }
  const s = samplingFrom({ temperature: GREEDY_TEMPERATURE, seed: 1 }, defaults);
  assert.is(s.temperature, GREEDY_TEMPERATURE, 'the threshold itself samples');
  assert.is(s.repetition_penalty, 1.05);
  assert.is(samplingFrom({ temperature: 1e-6, repetitionPenalty: 1.2, seed: 1 }, defaults).repetition_penalty, 1.2, 'an explicit penalty stays');
});

/** The parsed --repetition-penalty, or the parse error's text. */
function repetitionPenalty(value: string): number | string {
  const cmd = addGenerationOptions(new Command('ask')).exitOverride().configureOutput({ writeErr: () => {} });
  try {
    cmd.parse(['--repetition-penalty', value], { from: 'user' });
    return cmd.opts().repetitionPenalty;
  } catch (e) {
    return (e as Error).message;
  }
}

test('--repetition-penalty takes the engine range [0.01, 100]', () => {
  assert.is(repetitionPenalty('0.01'), 0.01);
  assert.is(repetitionPenalty('100'), 100);
  for (const bad of ['1e-45', '0.001', '0', '100.5']) {
    const got = repetitionPenalty(bad);
    assert.type(got, 'string', bad);
    assert.match(got as string, /\[0\.01, 100\]/);
  }
});

test.run();

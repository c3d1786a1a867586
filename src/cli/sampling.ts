// Turns the sampling flags and the model's defaults into the engine's sampling parameters.
import { randomInt } from 'node:crypto';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { Sampling } from '../protocol/index.js';

export interface SamplingFlags {
  temperature?: number;
  topK?: number;
  topP?: number;
  repetitionPenalty?: number;
  seed?: number;
}

/**
 * A temperature below this is greedy, as 0 is: the engine reads it as 0 (docs/protocol.md), since
 * logits / T overflows for a tiny T. Keep in step with GREEDY_TEMPERATURE in native/src/protocol.
 */
export const GREEDY_TEMPERATURE = 1e-5;

/** Whether this temperature means greedy search (0, or anything below GREEDY_TEMPERATURE). */
export function isGreedy(temperature: number): boolean {
  return temperature < GREEDY_TEMPERATURE;
}

/**
 * Flags win over generation_config.json. Greedy (`--temperature 0`, or below 1e-5) is the
 * reference's greedy search: no repetition penalty unless asked for, so ids match the model's own
 * greedy output; it is sent as temperature 0.
 */
export function samplingFrom(flags: SamplingFlags, defaults: GenerationDefaults): Sampling {
  const requested = flags.temperature ?? defaults.temperature;
  const greedy = isGreedy(requested);
  const temperature = greedy ? 0 : requested;
  return {
    temperature,
    top_k: flags.topK ?? defaults.topK,
    top_p: flags.topP ?? defaults.topP,
    repetition_penalty: flags.repetitionPenalty ?? (greedy ? 1 : defaults.repetitionPenalty),
    seed: flags.seed ?? randomInt(0, 2 ** 47),
  };
}

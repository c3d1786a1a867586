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
 * Flags win over generation_config.json. Greedy (`--temperature 0`) is the reference's greedy
 * search: no repetition penalty unless asked for, so ids match the model's own greedy output.
 */
export function samplingFrom(flags: SamplingFlags, defaults: GenerationDefaults): Sampling {
  const temperature = flags.temperature ?? defaults.temperature;
  const greedy = temperature === 0;
  return {
    temperature,
    top_k: flags.topK ?? defaults.topK,
    top_p: flags.topP ?? defaults.topP,
    repetition_penalty: flags.repetitionPenalty ?? (greedy ? 1 : defaults.repetitionPenalty),
    seed: flags.seed ?? randomInt(0, 2 ** 47),
  };
}

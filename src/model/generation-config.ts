// Sampling defaults from the model's generation_config.json (model-spec.md §3.5, §8.4).
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ModelError } from '../errors.js';

export interface GenerationDefaults {
  temperature: number;
  topK: number;
  topP: number;
  repetitionPenalty: number;
  stopIds: number[];
}

/** What generation_config.json of the released models says; used when the file is absent. */
const RELEASED: GenerationDefaults = { temperature: 0.6, topK: 20, topP: 0.95, repetitionPenalty: 1.05, stopIds: [151645, 151643] };

export function readGenerationDefaults(modelDir: string): GenerationDefaults {
  const path = join(modelDir, 'generation_config.json');
  if (!existsSync(path)) return { ...RELEASED };
  let cfg: Record<string, unknown>;
  try {
    cfg = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new ModelError(`${path} is not valid JSON (${(e as Error).message}): restore it from the model's repository`);
  }
  const num = (key: string, fallback: number) => (typeof cfg[key] === 'number' ? (cfg[key] as number) : fallback);
  const eos = cfg.eos_token_id;
  const stopIds = Array.isArray(eos) ? eos.filter((v): v is number => typeof v === 'number') : typeof eos === 'number' ? [eos] : RELEASED.stopIds;
  // do_sample=false in the file means greedy by default.
  const sampling = cfg.do_sample !== false;
  return {
    temperature: sampling ? num('temperature', RELEASED.temperature) : 0,
    topK: num('top_k', RELEASED.topK),
    topP: num('top_p', RELEASED.topP),
    repetitionPenalty: num('repetition_penalty', RELEASED.repetitionPenalty),
    stopIds,
  };
}

// How each trainer sizes media and limits length: the numbers `ovis data check` counts tokens with
// and `ovis finetune` passes on, so that training sees what inference sees.
//
// Upstream (AIDC-AI/Ovis ovis/train/arguments.py, TrainingArguments defaults):
//   single_image 448²…1792·1344; multiple_image 448²…448² (each image of a multi-image sample);
//   video 448²…448² per frame; min_frames = max_frames = 8; multimodal_max_length and
//   text_max_length 4096 (cut there, ConversationDataset.truncate_inputs).
// ms-swift (swift/llm/template/template/qwen.py, Ovis2_5Template.init_env_args): environment
//   variables MIN_PIXELS (448²), MAX_PIXELS (1344·1792), VIDEO_MAX_PIXELS (896²), NUM_FRAMES (8);
//   video frames use MIN_PIXELS as their minimum. Over-long samples are dropped
//   (--truncation_strategy delete, its default). ms-swift's own --max_length default is the model's
//   context; the docs are silent on a better one, so ovis uses 8192 and passes it explicitly.
import { UsageError } from '../errors.js';
import type { DatasetFormat } from './types.js';

export interface PixelRange {
  min: number;
  max: number;
}

export interface Profile {
  name: DatasetFormat;
  /** per-image budget for a sample with one image, and with several */
  singleImage: PixelRange;
  multiImage: PixelRange;
  /** per-frame budget of a video */
  video: PixelRange;
  /** frames a video (or a frame list) becomes */
  frames: number;
  /** longest sample in ids; longer ones are cut (upstream) or dropped (ms-swift) */
  maxLength: number;
}

export const UPSTREAM_MAX_LENGTH = 4096;
export const SWIFT_MAX_LENGTH = 8192;

export function upstreamProfile(maxLength = UPSTREAM_MAX_LENGTH): Profile {
  return {
    name: 'upstream',
    singleImage: { min: 448 * 448, max: 1792 * 1344 },
    multiImage: { min: 448 * 448, max: 448 * 448 },
    video: { min: 448 * 448, max: 448 * 448 },
    frames: 8,
    maxLength,
  };
}

/** ms-swift's budgets, with the user's MIN_PIXELS / MAX_PIXELS / VIDEO_MAX_PIXELS / NUM_FRAMES applied. */
export function swiftProfile(env: NodeJS.ProcessEnv = process.env, maxLength = SWIFT_MAX_LENGTH): Profile {
  const min = envInt(env, 'MIN_PIXELS', 448 * 448);
  const max = envInt(env, 'MAX_PIXELS', 1344 * 1792);
  return {
    name: 'swift',
    singleImage: { min, max },
    multiImage: { min, max },
    video: { min, max: envInt(env, 'VIDEO_MAX_PIXELS', 896 * 896) },
    frames: envInt(env, 'NUM_FRAMES', 8),
    maxLength,
  };
}

export function profileFor(name: DatasetFormat, maxLength?: number, env: NodeJS.ProcessEnv = process.env): Profile {
  return name === 'upstream' ? upstreamProfile(maxLength) : swiftProfile(env, maxLength);
}

function envInt(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v <= 0) {
    throw new UsageError(`${name}=${JSON.stringify(raw)} is not a positive whole number; ms-swift reads it as an int (unset it for the default ${fallback})`);
  }
  return v;
}

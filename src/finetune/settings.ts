// What `ovis finetune` asks of either trainer, in one place, with why.
import { IMAGE_MAX_PIXELS, IMAGE_MIN_PIXELS, VIDEO_MAX_PIXELS } from '../media/smart-resize.js';
import { DEFAULT_VIDEO_FRAMES } from '../media/video.js';

export type TrainEngine = 'swift' | 'upstream';
export type TrainMode = 'lora' | 'full';

export interface FinetuneSettings {
  engine: TrainEngine;
  mode: TrainMode;
  /** model directory (absolute) or hub id */
  model: string;
  /** dataset: ms-swift JSONL, or upstream datainfo JSON */
  data: string;
  output: string;
  maxLength: number;
  epochs: number;
  gpus: number;
  /** ms-swift major version (3 or 4): 4.x renamed --train_type to --tuner_type */
  swiftMajor: number;
  /** upstream: the AIDC-AI/Ovis checkout */
  ovisRepo?: string;
  /** passed through after ours, so they win */
  extra: string[];
}

/**
 * Pixel budgets matching `ovis ask` (model-spec.md §2.2 and the official video demo): images
 * 448²…1792², video frames 448²…896², 8 frames. ms-swift's own MAX_PIXELS default (1344·1792) and
 * upstream's (1792·1344) would train large images smaller than ovis later shows them.
 */
export const TRAIN_PIXELS = {
  imageMin: IMAGE_MIN_PIXELS,
  imageMax: IMAGE_MAX_PIXELS,
  videoMax: VIDEO_MAX_PIXELS,
  frames: DEFAULT_VIDEO_FRAMES,
} as const;

/** LoRA as the issue asks: rank 8, alpha 32, every linear projection of the LLM, vision frozen. */
export const LORA = { rank: 8, alpha: 32 } as const;

/** Learning rates: the usual ones for LoRA, and upstream's own SFT script's for full fine-tuning. */
export const LEARNING_RATE: Record<TrainMode, string> = { lora: '1e-4', full: '2e-5' };

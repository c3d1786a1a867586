// The command for AIDC-AI/Ovis's own SFT code (scripts/run_ovis2_5_sft.sh, ovis/train/train.py,
// ovis/train/arguments.py). It has no LoRA: full fine-tuning only, under DeepSpeed. train.py reads
// the datainfo from ovis/train/dataset/<data_info_version>.json inside the checkout, so the
// dataset's datainfo file is copied there first. Pixel budgets are ovis's inference ones for single
// images and video frames; multi-image samples keep upstream's 448² cap (memory), which
// `ovis data check --profile upstream` counts with.
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { upstreamProfile, type Profile } from '../data/profiles.js';
import { LEARNING_RATE, TRAIN_PIXELS, type FinetuneSettings } from './settings.js';
import type { TrainCommand } from './swift-command.js';

export interface UpstreamPlan extends TrainCommand {
  /** copy the datainfo here before running */
  copy: { from: string; to: string };
}

/** The budgets the command passes, as a profile `ovis data check --finetune-pixels` counts with. */
export function upstreamTrainProfile(maxLength: number): Profile {
  const p = upstreamProfile(maxLength);
  return {
    ...p,
    singleImage: { min: TRAIN_PIXELS.imageMin, max: TRAIN_PIXELS.imageMax },
    video: { min: TRAIN_PIXELS.imageMin, max: TRAIN_PIXELS.videoMax },
    frames: TRAIN_PIXELS.frames,
  };
}

export function upstreamCommand(s: FinetuneSettings, dataInfoName: string): UpstreamPlan {
  if (s.mode === 'lora') {
    throw new UsageError("AIDC-AI/Ovis's training code has no LoRA; use --engine swift for LoRA, or --mode full");
  }
  if (!s.ovisRepo) throw new UsageError('--engine upstream needs the AIDC-AI/Ovis checkout: give --ovis-repo DIR or set OVIS_REPO');
  const version = 'ovis_finetune_datainfo';
  const p = upstreamTrainProfile(s.maxLength);
  const argv = [
    'torchrun', `--nproc_per_node=${s.gpus}`, 'ovis/train/train.py',
    '--deepspeed', 'scripts/zero_configs/zero2_cp.json',
    '--stage', '3',
    '--data_info_version', version,
    '--data_name', dataInfoName,
    '--data_type', 'conversation',
    '--ovis_pretrained_path', s.model,
    '--attn_implementation', 'flash_attention_2',
    '--single_image_min_pixels', String(p.singleImage.min),
    '--single_image_max_pixels', String(p.singleImage.max),
    '--multiple_image_min_pixels', String(p.multiImage.min),
    '--multiple_image_max_pixels', String(p.multiImage.max),
    '--video_min_pixels', String(p.video.min),
    '--video_max_pixels', String(p.video.max),
    '--min_frames', String(p.frames),
    '--max_frames', String(p.frames),
    '--multimodal_max_length', String(p.maxLength),
    '--text_max_length', String(p.maxLength),
    '--train_modules', 'all',
    '--output_dir', s.output,
    '--per_device_train_batch_size', '1',
    '--gradient_accumulation_steps', '16',
    '--num_train_epochs', String(s.epochs),
    '--learning_rate', LEARNING_RATE.full,
    '--max_grad_norm', '1.0',
    '--weight_decay', '0.',
    '--warmup_ratio', '0.1',
    '--lr_scheduler_type', 'cosine',
    '--save_strategy', 'steps',
    '--save_steps', '500',
    '--logging_steps', '1',
    '--bf16', 'True',
    '--gradient_checkpointing', 'True',
    '--report_to', 'none',
    ...s.extra,
  ];
  return {
    env: {},
    argv,
    cwd: s.ovisRepo,
    copy: { from: s.data, to: join(s.ovisRepo, 'ovis', 'train', 'dataset', `${version}.json`) },
  };
}

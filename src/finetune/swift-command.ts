// The ms-swift command line for Ovis2.5 (docs: swift.readthedocs.io, Command-line parameters;
// template swift/llm/template/template/qwen.py Ovis2_5Template):
//   * pixel budgets go in as environment variables MIN_PIXELS / MAX_PIXELS / VIDEO_MAX_PIXELS /
//     NUM_FRAMES (read by Ovis2_5Template.init_env_args), set to what ovis uses at inference;
//   * --train_type (3.x) was renamed --tuner_type in 4.x;
//   * LoRA on all-linear with --freeze_vit/--freeze_aligner true targets the LLM's linear layers only;
//   * --loss_scale ignore_empty_think: the empty `<think>\n\n</think>\n\n` that ovis data convert
//     writes before non-thinking answers is shown to the model but not trained (ms-swift ≥ 3.x
//     regex loss scale; assumed present in every 3.x release ovis targets — older ones reject it);
//   * --truncation_strategy delete (ms-swift's default, explicit here): over-long samples are dropped,
//     which `ovis data check --profile swift` reports;
//   * full fine-tuning runs under DeepSpeed ZeRO-2.
import { swiftProfile, type Profile } from '../data/profiles.js';
import { LEARNING_RATE, LORA, TRAIN_PIXELS, type FinetuneSettings } from './settings.js';

export interface TrainCommand {
  /** environment assignments shown before the command and added to its environment */
  env: Record<string, string>;
  argv: string[];
  /** run from here (default: the current folder) */
  cwd?: string;
}

/** The user's own MIN_PIXELS etc. win over ours: they may know their data better. */
export function swiftPixelEnv(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const pick = (name: string, ours: number) => env[name] || String(ours);
  return {
    MIN_PIXELS: pick('MIN_PIXELS', TRAIN_PIXELS.imageMin),
    MAX_PIXELS: pick('MAX_PIXELS', TRAIN_PIXELS.imageMax),
    VIDEO_MAX_PIXELS: pick('VIDEO_MAX_PIXELS', TRAIN_PIXELS.videoMax),
    NUM_FRAMES: pick('NUM_FRAMES', TRAIN_PIXELS.frames),
  };
}

/** The budgets the command sets, as a profile `ovis data check --finetune-pixels` counts with. */
export function swiftTrainProfile(maxLength: number, env: NodeJS.ProcessEnv = process.env): Profile {
  return swiftProfile({ ...env, ...swiftPixelEnv(env) }, maxLength);
}

export function swiftCommand(s: FinetuneSettings, env: NodeJS.ProcessEnv = process.env): TrainCommand {
  const cmdEnv: Record<string, string> = swiftPixelEnv(env);
  if (s.gpus > 1) cmdEnv.NPROC_PER_NODE = String(s.gpus);
  const argv = [
    'swift', 'sft',
    '--model', s.model,
    '--dataset', s.data,
    s.swiftMajor >= 4 ? '--tuner_type' : '--train_type', s.mode,
    '--torch_dtype', 'bfloat16',
    ...(s.mode === 'lora' ? ['--lora_rank', String(LORA.rank), '--lora_alpha', String(LORA.alpha), '--target_modules', 'all-linear'] : []),
    '--freeze_vit', 'true',
    '--freeze_aligner', 'true',
    '--loss_scale', 'ignore_empty_think',
    '--max_length', String(s.maxLength),
    '--truncation_strategy', 'delete',
    '--num_train_epochs', String(s.epochs),
    '--learning_rate', LEARNING_RATE[s.mode],
    '--per_device_train_batch_size', '1',
    '--gradient_accumulation_steps', '16',
    '--gradient_checkpointing', 'true',
    ...(s.mode === 'full' ? ['--deepspeed', 'zero2'] : []),
    '--save_steps', '100',
    '--save_total_limit', '2',
    '--logging_steps', '5',
    '--output_dir', s.output,
    ...s.extra,
  ];
  return { env: cmdEnv, argv };
}

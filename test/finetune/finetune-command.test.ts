// `ovis finetune`: the generated ms-swift and upstream commands checked flag by flag; printing; and
// --run when the trainer is not installed (a clear message with the way to install it, exit 3).
// A real training run is impossible here; a stand-in `swift` that prints its arguments shows the
// output streaming through and a failing trainer's status reaching the user.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { chmodSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { swiftCommand } from '../../src/finetune/swift-command.js';
import { upstreamCommand } from '../../src/finetune/upstream-command.js';
import type { FinetuneSettings } from '../../src/finetune/settings.js';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dirs.js';

const dir = tempDir('ovis-finetune-');
const data = join(dir, 'train.jsonl');
writeFileSync(data, '{"messages":[{"role":"user","content":"Hi"},{"role":"assistant","content":"Hello"}]}\n');

const base: FinetuneSettings = { engine: 'swift', mode: 'lora', model: '/models/ovis', data, output: 'out', maxLength: 8192, epochs: 1, gpus: 1, swiftMajor: 4, extra: [] };

/** `--flag value` pairs (and lone flags as true) of an argv after its program words. */
function flags(argv: string[]): Record<string, string | true> {
  const out: Record<string, string | true> = {};
  for (let i = 0; i < argv.length; i++) {
    if (!argv[i].startsWith('--')) continue;
    const next = argv[i + 1];
    if (next !== undefined && !next.startsWith('--')) out[argv[i]] = argv[++i];
    else out[argv[i]] = true;
  }
  return out;
}

const SWIFT_COMMON = {
  '--model': '/models/ovis', '--dataset': data, '--torch_dtype': 'bfloat16',
  '--freeze_vit': 'true', '--freeze_aligner': 'true', '--loss_scale': 'ignore_empty_think',
  '--max_length': '8192', '--truncation_strategy': 'delete', '--num_train_epochs': '1',
  '--per_device_train_batch_size': '1', '--gradient_accumulation_steps': '16', '--gradient_checkpointing': 'true',
  '--save_steps': '100', '--save_total_limit': '2', '--logging_steps': '5', '--output_dir': 'out',
};

test('ms-swift 4.x LoRA: --tuner_type, rank 8, alpha 32, all-linear, vision frozen, pixel limits of ovis', () => {
  const c = swiftCommand(base, {});
  assert.equal(c.argv.slice(0, 2), ['swift', 'sft']);
  assert.equal(flags(c.argv), { ...SWIFT_COMMON, '--tuner_type': 'lora', '--lora_rank': '8', '--lora_alpha': '32', '--target_modules': 'all-linear', '--learning_rate': '1e-4' });
  assert.equal(c.env, { MIN_PIXELS: '200704', MAX_PIXELS: '3211264', VIDEO_MAX_PIXELS: '802816', NUM_FRAMES: '8' });
});

test('ms-swift 3.x full: --train_type, DeepSpeed ZeRO-2, no LoRA flags; the user\'s pixel variables win', () => {
  const c = swiftCommand({ ...base, mode: 'full', swiftMajor: 3, gpus: 4 }, { MAX_PIXELS: '1003520' });
  assert.equal(flags(c.argv), { ...SWIFT_COMMON, '--train_type': 'full', '--deepspeed': 'zero2', '--learning_rate': '2e-5' });
  assert.equal(c.env, { MIN_PIXELS: '200704', MAX_PIXELS: '1003520', VIDEO_MAX_PIXELS: '802816', NUM_FRAMES: '8', NPROC_PER_NODE: '4' });
});

test('extra trainer arguments come last, so they win', () => {
  const c = swiftCommand({ ...base, extra: ['--learning_rate', '5e-5'] }, {});
  assert.equal(c.argv.slice(-2), ['--learning_rate', '5e-5']);
});

test('upstream full: train.py flags, the datainfo copied into the checkout, LoRA refused', () => {
  const s = { ...base, engine: 'upstream' as const, mode: 'full' as const, data: '/d/mine_datainfo.json', ovisRepo: '/src/Ovis', maxLength: 4096, gpus: 2 };
  const c = upstreamCommand(s, 'mine');
  assert.equal(c.argv.slice(0, 3), ['torchrun', '--nproc_per_node=2', 'ovis/train/train.py']);
  assert.is(c.cwd, '/src/Ovis');
  assert.equal(c.copy, { from: '/d/mine_datainfo.json', to: '/src/Ovis/ovis/train/dataset/ovis_finetune_datainfo.json' });
  assert.equal(flags(c.argv.slice(3)), {
    '--deepspeed': 'scripts/zero_configs/zero2_cp.json', '--stage': '3', '--data_info_version': 'ovis_finetune_datainfo',
    '--data_name': 'mine', '--data_type': 'conversation', '--ovis_pretrained_path': '/models/ovis', '--attn_implementation': 'flash_attention_2',
    '--single_image_min_pixels': '200704', '--single_image_max_pixels': '3211264', '--multiple_image_min_pixels': '200704', '--multiple_image_max_pixels': '200704',
    '--video_min_pixels': '200704', '--video_max_pixels': '802816', '--min_frames': '8', '--max_frames': '8',
    '--multimodal_max_length': '4096', '--text_max_length': '4096', '--train_modules': 'all', '--output_dir': 'out',
    '--per_device_train_batch_size': '1', '--gradient_accumulation_steps': '16', '--num_train_epochs': '1', '--learning_rate': '2e-5',
    '--max_grad_norm': '1.0', '--weight_decay': '0.', '--warmup_ratio': '0.1', '--lr_scheduler_type': 'cosine', '--save_strategy': 'steps',
    '--save_steps': '500', '--logging_steps': '1', '--bf16': 'True', '--gradient_checkpointing': 'True', '--report_to': 'none',
  });
  assert.throws(() => upstreamCommand({ ...s, mode: 'lora' }, 'mine'), /has no LoRA; use --engine swift/);
});

/** A PATH with only node on it: no swift, no torchrun, no python3. */
function barePath(): string {
  const bin = join(dir, 'bare-bin');
  mkdirSync(bin, { recursive: true });
  return bin;
}

test('printing: the command on stdout (ready to paste), the check hint on stderr', async () => {
  const r = await runOvis(['finetune', '-m', fixtureDir, '--swift-version', '3', data], { env: { PATH: barePath() } });
  assert.is(r.code, 0, r.stderr);
  assert.match(r.stdout, /^MIN_PIXELS=200704 \\\nMAX_PIXELS=3211264 \\\nVIDEO_MAX_PIXELS=802816 \\\nNUM_FRAMES=8 \\\nswift sft \\\n  --model /);
  assert.match(r.stdout, /--train_type lora \\\n/);
  assert.match(r.stdout, new RegExp(`--model ${fixtureDir} `));
  assert.match(r.stderr, /ovis data check --profile swift --finetune-pixels --max-length 8192 /);
  const four = await runOvis(['finetune', data], { env: { PATH: barePath(), OVIS_PYTHON: join(dir, 'no-python') } });
  assert.is(four.code, 0, four.stderr);
  assert.match(four.stdout, /--tuner_type lora/);
  assert.match(four.stdout, /--model AIDC-AI\/Ovis2\.5-2B/, 'a model that is not downloaded is passed by name');
  assert.match(four.stderr, /ms-swift is not installed here: flags are for ms-swift 4\.x/);
});

test('--run without ms-swift: says how to install it, exit 3, nothing run', async () => {
  const r = await runOvis(['finetune', '--run', data], { env: { PATH: barePath(), OVIS_PYTHON: join(dir, 'no-python') } });
  assert.is(r.code, 3);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /ms-swift is not installed .*pip install 'ms-swift\[all\]' -U/);
});

test('--run for upstream without a checkout, or without torchrun: says what is missing and how to get it', async () => {
  const info = join(dir, 'mine_datainfo.json');
  writeFileSync(info, JSON.stringify({ mine: { meta_file: 'm.json', image_dir: '/', data_format: 'conversation' } }));
  const none = await runOvis(['finetune', '--engine', 'upstream', '--mode', 'full', '--run', info], { env: { PATH: barePath(), OVIS_REPO: undefined } });
  assert.is(none.code, 3);
  assert.match(none.stderr, /needs the AIDC-AI\/Ovis training code; get it with `git clone https:\/\/github\.com\/AIDC-AI\/Ovis/);
  const repo = join(dir, 'Ovis');
  mkdirSync(join(repo, 'ovis', 'train', 'dataset'), { recursive: true });
  writeFileSync(join(repo, 'ovis', 'train', 'train.py'), '');
  const noTorch = await runOvis(['finetune', '--engine', 'upstream', '--mode', 'full', '--ovis-repo', repo, '--run', info], { env: { PATH: barePath() } });
  assert.is(noTorch.code, 3);
  assert.match(noTorch.stderr, /torchrun is not on PATH/);
  const lora = await runOvis(['finetune', '--engine', 'upstream', '--ovis-repo', repo, info]);
  assert.is(lora.code, 2);
  assert.match(lora.stderr, /has no LoRA/);
});

test('--run streams the trainer\'s output through and reports its failure', async () => {
  // stand-ins: a python that reports ms-swift 3.9.0, a swift that echoes its arguments and fails on demand
  const bin = join(dir, 'fake-bin');
  mkdirSync(bin, { recursive: true });
  writeFileSync(join(bin, 'python3'), '#!/bin/sh\necho 3.9.0\n');
  writeFileSync(join(bin, 'swift'), '#!/bin/sh\necho "training with $MAX_PIXELS: $*"\n[ -n "$FAIL" ] && exit 7\nexit 0\n');
  for (const f of ['python3', 'swift']) chmodSync(join(bin, f), 0o755);
  const env = { PATH: `${bin}:/usr/bin:/bin` };
  const ok = await runOvis(['finetune', '--run', data], { env });
  assert.is(ok.code, 0, ok.stderr);
  assert.match(ok.stdout, /^training with 3211264: sft --model .* --train_type lora /);
  const bad = await runOvis(['finetune', '--run', data], { env: { ...env, FAIL: '1' } });
  assert.is(bad.code, 5);
  assert.match(bad.stderr, /training failed: swift sft exited with 7/);
});

test.run();

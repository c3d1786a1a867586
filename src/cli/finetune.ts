// `ovis finetune --engine swift|upstream --mode lora|full DATA [--run] [-- TRAINER_ARGS…]`: prints (or
// runs) the training command for the model with settings that match ovis's inference (src/finetune/).
import { Command, Option } from 'commander';
import { existsSync, readFileSync, copyFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import { resolveModel } from '../model/resolve.js';
import { SWIFT_MAX_LENGTH, UPSTREAM_MAX_LENGTH } from '../data/profiles.js';
import { requireSwift, requireUpstream, swiftVersion } from '../finetune/find-trainer.js';
import { formatCommand, runTraining } from '../finetune/run-training.js';
import type { FinetuneSettings, TrainEngine, TrainMode } from '../finetune/settings.js';
import { swiftCommand, type TrainCommand } from '../finetune/swift-command.js';
import { upstreamCommand } from '../finetune/upstream-command.js';
import { createLogger, type Logger } from '../output/logger.js';
import { intOption } from './options.js';

interface FinetuneOptions {
  engine: TrainEngine;
  mode: TrainMode;
  model?: string;
  output: string;
  maxLength?: number;
  epochs: number;
  gpus: number;
  swiftVersion?: number;
  ovisRepo?: string;
  run: boolean;
}

const DEFAULT_MODEL = 'AIDC-AI/Ovis2.5-2B';

export function finetuneCommand(): Command {
  return new Command('finetune')
    .description('print or run the ms-swift or upstream training command, with settings that match ovis')
    .argument('<data>', 'dataset: ms-swift JSONL (--engine swift) or upstream datainfo JSON (--engine upstream)')
    .argument('[trainer-args...]', 'after --: extra arguments for the trainer, added last')
    .addOption(new Option('--engine <engine>', 'trainer').choices(['swift', 'upstream']).default('swift'))
    .addOption(new Option('--mode <mode>', 'LoRA adapter or full fine-tuning').choices(['lora', 'full']).default('lora'))
    .option('-m, --model <model>', `model directory or hub id to start from (default: $OVIS_MODEL, else ${DEFAULT_MODEL})`)
    .option('-o, --output <dir>', 'folder the trainer writes checkpoints to', 'output')
    .option('--max-length <n>', `longest sample in ids (default: ms-swift ${SWIFT_MAX_LENGTH}, upstream ${UPSTREAM_MAX_LENGTH})`, intOption('--max-length', 1))
    .option('--epochs <n>', 'training epochs', intOption('--epochs', 1), 1)
    .option('--gpus <n>', 'GPUs on this machine to train on', intOption('--gpus', 1), 1)
    .option('--swift-version <major>', 'ms-swift major version, 3 or 4 (default: the installed one, else 4)', intOption('--swift-version', 3, 4))
    .option('--ovis-repo <dir>', 'AIDC-AI/Ovis checkout for --engine upstream (default: $OVIS_REPO)')
    .option('--run', 'run the command (after checking the trainer is installed) instead of printing it', false)
    .action(runFinetune);
}

async function runFinetune(data: string, extra: string[], opts: FinetuneOptions): Promise<void> {
  const log = createLogger();
  if (!existsSync(data)) throw new InputError(`dataset ${data} does not exist`);
  const engine = opts.engine;
  let major = opts.swiftVersion;
  if (engine === 'swift' && opts.run) major ??= (await requireSwift()).major;
  if (engine === 'upstream' && opts.run) requireUpstream(opts.ovisRepo ?? process.env.OVIS_REPO);
  if (engine === 'swift' && major === undefined) {
    const v = await swiftVersion();
    major = v ? Number(v.split('.')[0]) : 4;
    if (!v) log.info('ms-swift is not installed here: flags are for ms-swift 4.x (--swift-version 3 for 3.x)');
  }
  const settings: FinetuneSettings = {
    engine,
    mode: opts.mode,
    model: await modelArg(opts.model),
    data: resolve(data),
    // absolute: the upstream command runs from inside the checkout
    output: resolve(opts.output),
    maxLength: opts.maxLength ?? (engine === 'swift' ? SWIFT_MAX_LENGTH : UPSTREAM_MAX_LENGTH),
    epochs: opts.epochs,
    gpus: opts.gpus,
    swiftMajor: major ?? 4,
    ovisRepo: (opts.ovisRepo ?? process.env.OVIS_REPO) && resolve(opts.ovisRepo ?? process.env.OVIS_REPO!),
    extra,
  };
  const { command, copy } = engine === 'swift' ? { command: swiftCommand(settings), copy: undefined } : upstreamPlan(settings);
  hint(log, settings);
  if (!opts.run) {
    if (copy) process.stdout.write(`cp ${copy.from} ${copy.to}\n`);
    process.stdout.write(formatCommand(command));
    return;
  }
  if (copy) {
    copyFileSync(copy.from, copy.to);
    log.info(`copied the datainfo to ${copy.to}`);
  }
  log.info(`running: ${command.argv.slice(0, 2).join(' ')} … (output follows)`);
  await runTraining(command);
}

function upstreamPlan(s: FinetuneSettings): { command: TrainCommand; copy: { from: string; to: string } } {
  let name: string;
  try {
    const info = JSON.parse(readFileSync(s.data, 'utf8')) as Record<string, { meta_file?: string }>;
    const names = Object.keys(info);
    if (Array.isArray(info) || names.length !== 1 || typeof info[names[0]]?.meta_file !== 'string') throw new Error('not a datainfo');
    name = names[0];
  } catch {
    throw new UsageError(`${s.data} is not an upstream datainfo file with one dataset; make one with \`ovis data convert --to upstream IN OUT.json\` (it writes OUT_datainfo.json)`);
  }
  const plan = upstreamCommand(s, name);
  return { command: plan, copy: plan.copy };
}

/** A downloaded model is passed as its folder (no second download by the trainer); else the id. */
async function modelArg(given: string | undefined): Promise<string> {
  const name = given ?? process.env.OVIS_MODEL ?? DEFAULT_MODEL;
  if (existsSync(name)) return resolve(name);
  try {
    return (await resolveModel(name)).dir;
  } catch {
    return name;
  }
}

function hint(log: Logger, s: FinetuneSettings): void {
  log.info(`check the data with this run's rules first: ovis data check --profile ${s.engine} --finetune-pixels --max-length ${s.maxLength} ${s.data}`);
}

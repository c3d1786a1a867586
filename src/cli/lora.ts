// `ovis lora merge BASE ADAPTER OUT`: writes a model directory with a PEFT LoRA adapter merged into
// the base model's weights (the engine's `lora-merge`, the same merge `--lora` does at load), so that
// `ovis ask --model OUT` answers as `ovis ask --model BASE --lora ADAPTER`. Progress goes to stderr.
import { Command } from 'commander';
import { execa } from 'execa';
import { resolve } from 'node:path';
import { EngineError, ModelError, UsageError } from '../errors.js';
import { locateEngine } from '../engine/locate.js';
import { createLogger } from '../output/logger.js';
import { modelDirFor } from './model-arg.js';

export function loraCommand(): Command {
  // Set before `merge` is made, so the subcommand inherits it (usage errors become exit codes, not process.exit).
  const lora = new Command('lora').description('work with LoRA adapters (PEFT / ms-swift)').exitOverride();
  lora
    .command('merge')
    .description("write a model directory with a LoRA adapter merged into the base model's weights")
    .argument('<base>', 'the base model: a directory or ORG/NAME[@REVISION]')
    .argument('<adapter>', 'the adapter directory (adapter_config.json, adapter_model.safetensors)')
    .argument('<out>', 'the new model directory (must not exist, or be empty)')
    .action(runMerge);
  return lora;
}

async function runMerge(base: string, adapter: string, out: string): Promise<void> {
  const log = createLogger();
  const baseDir = await modelDirFor(base, log);
  const r = await execa(locateEngine(), ['lora-merge', baseDir, resolve(adapter), resolve(out)], { reject: false, stdin: 'ignore', stdout: 'ignore', stderr: 'inherit' });
  if (r.exitCode === 0) return;
  const how = `merging the adapter failed (status ${r.exitCode}; see the engine's message above)`;
  throw r.exitCode === 4 ? new ModelError(how) : r.exitCode === 2 ? new UsageError(how) : new EngineError(how);
}

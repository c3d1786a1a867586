// `ovis bench`: runs the engine's own benchmark (`ovis-engine bench`, the same code the engine
// serves with) and prints each table row as soon as the engine reports its figure, or the final
// JSON report with --json. Progress goes to stderr. The engine writes JSON lines (plan, figures,
// report: native/src/bench/report.rs); the table's rows are formatted in bench-table.ts.
import { Command, InvalidArgumentError, Option } from 'commander';
import { execa } from 'execa';
import { EngineError, ModelError, UsageError } from '../errors.js';
import { locateEngine } from '../engine/locate.js';
import { createLogger } from '../output/logger.js';
import { modelDirFor } from './model-arg.js';
import { BenchTable } from './bench-table.js';
import { deviceOption, intOption, LORA_HELP, PRECISION_HELP, PRECISIONS, type Precision, resolveWeights, WEIGHTS_HELP, weightsOption } from './options.js';
import { resolve } from 'node:path';

interface BenchOptions {
  synthetic?: string;
  model?: string;
  lora?: string;
  weights?: string;
  quality: boolean;
  device: string;
  full: boolean;
  images?: string;
  promptTokens?: number;
  decodeTokens?: number;
  repeats?: number;
  warmup?: number;
  concurrency?: string;
  profile: boolean;
  precision?: Precision;
  json: boolean;
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure vision encode, time to first token, prefill and decode speed')
    .addOption(new Option('--synthetic <size>', 'random weights of a released shape, built in the engine (no files)').choices(['2b', '9b']))
    .option('-m, --model <model>', 'benchmark a real model instead: a directory or ORG/NAME[@REVISION]')
    .option('--lora <dir>', `with --model: ${LORA_HELP}`)
    .option('--device <device>', 'where the engine runs: auto, cpu, cuda, cuda:N', deviceOption, 'auto')
    .option('--weights <mode>', WEIGHTS_HELP, weightsOption)
    .option('--quality', "with --weights int8|int4: measure the quantized decoder against bf16 instead of speed (last-position logits cosine, greedy ids that agree)", false)
    .option('--full', 'on the CPU, the complete set: 448,896 images, 32 decode tokens, 1 warm-up, vision encode in runs of its own (many minutes); a GPU always runs it', false)
    .option('--images <sides>', "square image sides for vision figures, e.g. 896,1792, or 'none' (default 448 on the CPU, 448,896 with --full, 896,1792 on a GPU)")
    .option('--prompt-tokens <n>', 'prompt length for the prefill figure (default 128)', intOption('--prompt-tokens', 1, 32768))
    .option('--decode-tokens <n>', 'tokens decoded per repeat (default 16 on the CPU, 32 with --full or on a GPU)', intOption('--decode-tokens', 1, 4096))
    .option('--repeats <n>', 'timed runs per figure, the median is reported (default 3)', intOption('--repeats', 1, 100))
    .option('--warmup <n>', 'untimed runs first (default 0 on the CPU, 1 with --full or on a GPU)', intOption('--warmup', 0, 100))
    .option('--concurrency <n>', 'measure continuous batching instead (CPU or CUDA): N requests decoding together, e.g. 1,2,4,8, alone and while a long prompt prefills', concurrencyOption)
    .option('--profile', 'after the figures, time each stage of one pass on the CPU (patchify, ViT GEMMs and attention, head, VTE, prefill, decode, sampling) with GFLOP/s and % of the measured FMA peak', false)
    .addOption(new Option('--precision <p>', PRECISION_HELP).choices(PRECISIONS))
    .option('--json', 'print the final JSON report (one object) instead of the table', false)
    .addHelpText('after', '\nOn the CPU the defaults finish in 1–2 minutes for --synthetic 2b on 2 cores (vision encode is\ntimed inside the time-to-first-token runs); --full takes many minutes there. Rows print as measured.')
    .action(runBench);
}

/** The engine's arguments: only the flags given, so that the engine picks its backend's defaults. */
function engineArgs(opts: BenchOptions, modelDir: string | undefined): string[] {
  const args = ['bench', '--device', opts.device];
  args.push(...(modelDir ? ['--model', modelDir] : ['--synthetic', opts.synthetic!]));
  if (opts.lora !== undefined) args.push('--lora', resolve(opts.lora));
  const weights = resolveWeights(opts.weights);
  if (weights !== undefined) args.push('--weights', weights);
  if (opts.quality) args.push('--quality');
  if (opts.full) args.push('--full');
  if (opts.profile) args.push('--profile');
  if (opts.precision !== undefined) args.push('--precision', opts.precision);
  const given: Array<[string, string | number | undefined]> = [
    ['--images', opts.images], ['--concurrency', opts.concurrency], ['--prompt-tokens', opts.promptTokens], ['--decode-tokens', opts.decodeTokens], ['--repeats', opts.repeats], ['--warmup', opts.warmup],
  ];
  for (const [flag, v] of given) if (v !== undefined) args.push(flag, String(v));
  return args;
}

async function runBench(opts: BenchOptions): Promise<void> {
  if (!opts.synthetic && !opts.model) throw new UsageError('give --synthetic 2b|9b or --model DIR');
  if (opts.synthetic && opts.model) throw new UsageError('give --synthetic or --model, not both');
  if (opts.quality && (resolveWeights(opts.weights) ?? 'bf16') === 'bf16') throw new UsageError('--quality compares quantized weights with bf16: give --weights int8 or int4');
  if (opts.lora !== undefined && !opts.model) throw new UsageError('--lora needs --model: an adapter is merged into a model\'s weights');
  const modelDir = opts.model ? await modelDirFor(opts.model, createLogger()) : undefined;
  const engine = execa(locateEngine(), engineArgs(opts, modelDir), { reject: false, stderr: 'inherit', stdin: 'ignore', buffer: false });
  const table = new BenchTable();
  let report: unknown;
  for await (const line of engine) {
    if (!line.trim()) continue;
    const msg = parseLine(line);
    if (msg.type === 'report') report = msg;
    if (opts.json) continue;
    if (msg.type === 'plan' && !msg.full && !msg.concurrency?.length) process.stderr.write('ovis bench: the quick CPU set (vision encode timed inside the first-token runs); --full measures the complete set (many minutes)\n');
    process.stdout.write(table.rows(msg));
  }
  const r = await engine;
  if (r.exitCode !== 0) {
    const how = `the engine's benchmark failed (status ${r.exitCode}; see its messages above)`;
    throw r.exitCode === 4 ? new ModelError(how) : r.exitCode === 2 ? new UsageError(how) : new EngineError(how);
  }
  if (!report) throw new EngineError("the engine's benchmark ended without its report line");
  if (opts.json) process.stdout.write(`${JSON.stringify(report)}\n`);
}

/** 1,2,4,8: stream counts from 1 to 64. */
function concurrencyOption(value: string): string {
  const ok = value.split(',').every((v) => /^\d+$/.test(v.trim()) && Number(v) >= 1 && Number(v) <= 64);
  if (!ok) throw new InvalidArgumentError(`--concurrency takes stream counts from 1 to 64, e.g. 1,2,4,8, got ${JSON.stringify(value)}`);
  return value.split(',').map((v) => v.trim()).join(',');
}

function parseLine(line: string): any {
  try {
    return JSON.parse(line);
  } catch {
    throw new EngineError(`the engine's benchmark wrote a line that is not JSON: ${JSON.stringify(line.slice(0, 200))}`);
  }
}

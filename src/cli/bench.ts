// `ovis bench`: runs the engine's own benchmark (`ovis-engine bench`, the same code the engine
// serves with) and prints a table, or its JSON with --json. Progress goes to stderr.
import { Command, Option } from 'commander';
import { execa } from 'execa';
import { EngineError, ModelError, UsageError } from '../errors.js';
import { locateEngine } from '../engine/locate.js';
import { resolveModelDir } from '../model/resolve.js';
import { deviceOption, intOption } from './options.js';

interface BenchOptions {
  synthetic?: string;
  model?: string;
  device: string;
  images?: string;
  promptTokens: number;
  decodeTokens: number;
  repeats: number;
  warmup: number;
  json: boolean;
}

export function benchCommand(): Command {
  return new Command('bench')
    .description('measure vision encode, time to first token, prefill and decode speed')
    .addOption(new Option('--synthetic <size>', 'random weights of a released shape, built in the engine (no files)').choices(['2b', '9b']))
    .option('-m, --model <dir>', 'benchmark a model directory instead')
    .option('--device <device>', 'where the engine runs: auto, cpu, cuda, cuda:N', deviceOption, 'auto')
    .option('--images <sides>', "square image sides for vision figures, e.g. 896,1792, or 'none' (default 896,1792 on a GPU, 448,896 on the CPU)")
    .option('--prompt-tokens <n>', 'prompt length for the prefill figure', intOption('--prompt-tokens', 1, 32768), 128)
    .option('--decode-tokens <n>', 'tokens decoded per repeat', intOption('--decode-tokens', 1, 4096), 32)
    .option('--repeats <n>', 'timed runs per figure (the median is reported)', intOption('--repeats', 1, 100), 3)
    .option('--warmup <n>', 'untimed runs first', intOption('--warmup', 0, 100), 1)
    .option('--json', 'print the JSON report', false)
    .action(runBench);
}

async function runBench(opts: BenchOptions): Promise<void> {
  if (!opts.synthetic && !opts.model) throw new UsageError('give --synthetic 2b|9b or --model DIR');
  if (opts.synthetic && opts.model) throw new UsageError('give --synthetic or --model, not both');
  const args = ['bench', '--device', opts.device, '--prompt-tokens', String(opts.promptTokens), '--decode-tokens', String(opts.decodeTokens), '--repeats', String(opts.repeats), '--warmup', String(opts.warmup)];
  args.push(...(opts.model ? ['--model', resolveModelDir(opts.model)] : ['--synthetic', opts.synthetic!]));
  if (opts.images !== undefined) args.push('--images', opts.images);
  const r = await execa(locateEngine(), args, { reject: false, stderr: 'inherit', stdin: 'ignore' });
  if (r.exitCode !== 0) {
    const how = `the engine's benchmark failed (status ${r.exitCode}; see its messages above)`;
    throw r.exitCode === 4 ? new ModelError(how) : r.exitCode === 2 ? new UsageError(how) : new EngineError(how);
  }
  if (opts.json) {
    process.stdout.write(`${JSON.stringify(JSON.parse(r.stdout))}\n`);
    return;
  }
  process.stdout.write(formatReport(JSON.parse(r.stdout)));
}

const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

export function formatReport(b: any): string {
  const rows: Array<[string, string]> = [
    ['model', b.model],
    ['backend / device', `${b.backend} / ${b.device}`],
  ];
  for (const img of b.images) {
    rows.push([`vision encode ${img.side}² (${img.patches} patches)`, ms(img.vision_encode_ms)]);
    rows.push([`time to first token ${img.side}² (${img.positions} positions)`, ms(img.time_to_first_token_ms)]);
  }
  rows.push([`prefill (${b.prefill.tokens} tokens)`, `${b.prefill.tokens_per_s.toFixed(1)} tokens/s (${ms(b.prefill.ms)})`]);
  rows.push([`decode (context ${b.decode.context})`, `${ms(b.decode.ms_per_token)}/token (${b.decode.tokens_per_s.toFixed(1)} tokens/s)`]);
  rows.push(['peak memory', `${(b.peak_memory_bytes / 2 ** 30).toFixed(2)} GiB`]);
  const f = b.floor;
  rows.push(['decode floor', `${ms(f.decode_ms_per_token)}/token (${(f.weight_bytes_per_token / 1e9).toFixed(2)} GB at ${(f.read_bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s read)`]);
  rows.push(['decode vs floor', `${((f.decode_ms_per_token / b.decode.ms_per_token) * 100).toFixed(0)} % of the bandwidth floor`]);
  const width = Math.max(...rows.map(([k]) => k.length));
  return `${rows.map(([k, v]) => `${k.padEnd(width)}  ${v}`).join('\n')}\n(medians of ${b.repeats} after ${b.warmup} warm-up)\n`;
}

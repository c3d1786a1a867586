// `ovis data check FILE` and `ovis data convert --to swift|upstream IN OUT`: training sets for
// ms-swift and AIDC-AI/Ovis's own SFT code, checked with our tokenizer and chat rules before any GPU
// time is spent, and converted between the two formats (src/data/).
import { Command, Option } from 'commander';
import { InputError } from '../errors.js';
import { checkDatasetParallel, type CheckSummary } from '../data/check-dataset.js';
import { convertDataset } from '../data/convert-dataset.js';
import { profileFor, SWIFT_MAX_LENGTH, UPSTREAM_MAX_LENGTH, type Profile } from '../data/profiles.js';
import { swiftTrainProfile } from '../finetune/swift-command.js';
import { upstreamTrainProfile } from '../finetune/upstream-command.js';
import { loadDataset } from '../data/read-dataset.js';
import type { DatasetFormat, Problem } from '../data/types.js';
import { createLogger, type Logger } from '../output/logger.js';
import { createProgress } from '../output/progress.js';
import { OvisTokenizer } from '../prompt/tokenizer.js';
import { modelDirFor } from './model-arg.js';
import { intOption } from './options.js';

interface CheckOptions {
  format?: DatasetFormat;
  profile?: DatasetFormat;
  imageDir?: string;
  maxLength?: number;
  finetunePixels: boolean;
  decode: boolean;
  perSample: boolean;
  json: boolean;
  model?: string;
  jobs?: number;
}

interface ConvertOptions {
  to: DatasetFormat;
  from?: DatasetFormat;
  imageDir?: string;
  json: boolean;
}

const formatOption = (flag: string, what: string) => new Option(`${flag} <format>`, what).choices(['upstream', 'swift']);

export function dataCommand(): Command {
  const data = new Command('data').description('check and convert fine-tuning datasets (ms-swift JSONL, AIDC-AI/Ovis JSON)');
  data.addCommand(
    new Command('check')
      .description('validate a training set and count its tokens exactly as the trainer will')
      .argument('<file>', 'ms-swift JSONL, upstream JSON list, or upstream datainfo JSON')
      .addOption(formatOption('--format', 'the file\'s format (default: from its content)'))
      .addOption(formatOption('--profile', "whose rules to count with: upstream's SFT code or ms-swift (default: the file's format)"))
      .option('--image-dir <dir>', 'folder the media paths are relative to (default: the datainfo\'s image_dir, else the file\'s folder)')
      .option('--max-length <n>', 'longest sample in ids (default: upstream 4096, ms-swift 8192)', intOption('--max-length', 1))
      .option('--finetune-pixels', "count with the pixel budgets ovis finetune passes (ovis's inference ones) instead of the trainer's defaults", false)
      .option('--decode', 'decode every image fully, not only its header (slower)', false)
      .option('--per-sample', "print each sample's text, visual and trained token counts on stdout", false)
      .option('--json', 'print one JSON line per problem (and per sample with --per-sample) on stdout', false)
      .option('-m, --model <model>', 'model whose tokenizer counts (default: $OVIS_MODEL, else AIDC-AI/Ovis2.5-2B)')
      .option('-j, --jobs <n>', 'worker threads (default: one per 5,000 samples, at most the cores and 8)', intOption('--jobs', 1, 64))
      .action(runCheck),
  );
  data.addCommand(
    new Command('convert')
      .description('convert a dataset between the ms-swift and upstream formats')
      .addOption(formatOption('--to', 'format to write').makeOptionMandatory())
      .addOption(formatOption('--from', "the input's format (default: from its content)"))
      .argument('<in>', 'dataset to read')
      .argument('<out>', 'file to write (for upstream, OUT_datainfo.json is written beside it)')
      .option('--image-dir <dir>', 'input media folder (upstream meta file); for --to upstream, the image_dir to write (default: the folder holding all media)')
      .option('--json', 'print one JSON line per problem and a summary line on stdout', false)
      .action(runConvert),
  );
  return data;
}

async function runCheck(file: string, opts: CheckOptions): Promise<void> {
  const log = createLogger();
  const data = await loadDataset(file, { format: opts.format, imageDir: opts.imageDir });
  const profile = profileOf(opts.profile ?? data.format, opts.maxLength, opts.finetunePixels);
  const modelDir = await modelDirFor(opts.model, log);
  const progress = createProgress();
  const long = data.samples.length >= 1000;
  if (long) progress.phase('checking samples');
  const out = process.stdout;
  const summary = await checkDatasetParallel(data, {
    profile,
    modelDir,
    jobs: opts.jobs,
    decode: opts.decode,
    onProgress: (done, total) => (progress.prefix = `${done.toLocaleString('en-US')}/${total.toLocaleString('en-US')} samples`),
    onSample: (index, report) => {
      for (const p of report.problems) {
        if (opts.json) out.write(`${JSON.stringify({ type: 'problem', ...p })}\n`);
        else {
          progress.stop();
          (p.severity === 'error' ? log.error : log.warn)(p.message);
        }
      }
      if (opts.perSample && report.tokens) {
        const t = report.tokens;
        out.write(opts.json ? `${JSON.stringify({ type: 'sample', sample: index, ...t })}\n` : `${index}\ttext ${t.text}\tvisual ${t.visual}\ttrained ${t.trained}\ttotal ${t.total}\n`);
      }
    },
  }, () => OvisTokenizer.load(modelDir));
  progress.stop();
  printSummary(log, data.format, profile, summary);
  if (summary.errors > 0) {
    throw new InputError(`${summary.errors} error${summary.errors === 1 ? '' : 's'} in ${summary.badSamples} of ${summary.samples} samples; fix them before training`);
  }
}

function profileOf(name: DatasetFormat, maxLength: number | undefined, finetune: boolean): Profile {
  if (!finetune) return profileFor(name, maxLength);
  return name === 'swift' ? swiftTrainProfile(maxLength ?? SWIFT_MAX_LENGTH) : upstreamTrainProfile(maxLength ?? UPSTREAM_MAX_LENGTH);
}

const n = (v: number) => v.toLocaleString('en-US');

function printSummary(log: Logger, format: DatasetFormat, p: Profile, s: CheckSummary): void {
  const rate = s.seconds > 0 ? ` (${n(Math.round(s.samples / s.seconds))} samples/s)` : '';
  const codes = (severity: 'error' | 'warning') =>
    Object.entries(severity === 'error' ? s.errorCodes : s.warningCodes)
      .map(([code, k]) => `${code} ${k}`)
      .join(', ');
  log.info(`checked ${n(s.samples)} samples (${format} format, ${p.name} rules) in ${s.seconds.toFixed(2)} s${rate}`);
  log.info(`rules: images ${n(p.singleImage.min)}…${n(p.singleImage.max)} pixels (${n(p.multiImage.max)} each when several), video ${p.frames} frames of ${n(p.video.min)}…${n(p.video.max)}, max length ${n(p.maxLength)}`);
  log.info(`errors: ${n(s.errors)} in ${n(s.badSamples)} samples${s.errors ? ` (${codes('error')})` : ''}; warnings: ${n(s.warnings)}${s.warnings ? ` (${codes('warning')})` : ''}`);
  const t = s.tokens;
  log.info(`tokens: ${n(t.text)} text, ${n(t.visual)} visual, ${n(t.trained)} trained; longest: ${t.longestSample === null ? 'none' : `sample ${t.longestSample}, ${n(t.longest)} ids`}`);
}

async function runConvert(input: string, output: string, opts: ConvertOptions): Promise<void> {
  const log = createLogger();
  const data = await loadDataset(input, { format: opts.from, imageDir: opts.imageDir });
  const r = await convertDataset(data, opts.to, output, { imageDir: opts.to === 'upstream' ? opts.imageDir : undefined });
  const report = (p: Problem) => (opts.json ? process.stdout.write(`${JSON.stringify({ type: 'problem', ...p })}\n`) : (p.severity === 'error' ? log.error : log.warn)(p.message));
  r.problems.forEach(report);
  const errors = new Set(r.problems.filter((p) => p.severity === 'error').map((p) => p.sample)).size;
  if (opts.json) process.stdout.write(`${JSON.stringify({ type: 'converted', to: opts.to, out: output, written: r.written, skipped: r.skipped, datainfo: r.dataInfoPath, image_dir: r.imageDir })}\n`);
  log.info(`wrote ${n(r.written)} samples to ${output} (${opts.to} format)${r.skipped ? `; ${n(r.skipped)} left out` : ''}`);
  if (r.dataInfoPath) log.info(`datainfo: ${r.dataInfoPath} (image_dir ${r.imageDir})`);
  if (errors > 0) throw new InputError(`${errors} sample${errors === 1 ? '' : 's'} had errors and ${errors === 1 ? 'was' : 'were'} left out; run ovis data check ${input} for details`);
}

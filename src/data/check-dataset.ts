// `ovis data check` without the command line: every sample of a dataset through checkSample, a few
// dozen at a time (media headers are I/O), results delivered in sample order.
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { OvisError } from '../errors.js';
import type { PromptTokenizer } from '../prompt/encode.js';
import { checkSample, type SampleReport } from './check-sample.js';
import type { WorkerInput, WorkerMessage } from './check-worker.js';
import { MediaSizer } from './media-size.js';
import type { Profile } from './profiles.js';
import type { LoadedDataset } from './read-dataset.js';
import type { Problem, SampleTokens } from './types.js';

export interface CheckOptions {
  profile: Profile;
  tokenizer: PromptTokenizer;
  /** decode every image fully instead of reading its header */
  decode?: boolean;
  /** called in sample order */
  onSample?: (index: number, report: SampleReport) => void;
  /** called after each batch with the number of samples done */
  onProgress?: (done: number, total: number) => void;
}

export interface ParallelCheckOptions extends Omit<CheckOptions, 'tokenizer'> {
  /** the model folder whose tokenizer each worker loads */
  modelDir: string;
  /** worker threads (default: one per 5,000 samples, at most the cores and 8) */
  jobs?: number;
}

export interface CheckSummary {
  samples: number;
  errors: number;
  warnings: number;
  /** samples with at least one error */
  badSamples: number;
  /** problems per code, errors and warnings apart */
  errorCodes: Record<string, number>;
  warningCodes: Record<string, number>;
  tokens: { text: number; visual: number; trained: number; longest: number; longestSample: number | null };
  seconds: number;
}

/** Samples checked concurrently: enough to overlap header reads, few enough to keep memory flat. */
const BATCH = 64;

export async function checkDataset(data: LoadedDataset, options: CheckOptions): Promise<CheckSummary> {
  const t0 = performance.now();
  const ctx = { format: data.format, profile: options.profile, tokenizer: options.tokenizer, sizer: new MediaSizer({ decode: options.decode }), mediaDir: data.mediaDir };
  const summary = emptySummary(data.samples.length);
  const fileProblems = new Map<number, Problem[]>();
  for (const p of data.problems) fileProblems.set(p.sample ?? -1, [...(fileProblems.get(p.sample ?? -1) ?? []), p]);

  for (let start = 0; start < data.samples.length; start += BATCH) {
    const end = Math.min(start + BATCH, data.samples.length);
    const reports = await Promise.all(
      data.samples.slice(start, end).map((raw, k) =>
        fileProblems.has(start + k) ? Promise.resolve({ problems: fileProblems.get(start + k)! }) : checkSample(raw, start + k, ctx),
      ),
    );
    reports.forEach((r, k) => {
      tally(summary, start + k, r);
      options.onSample?.(start + k, r);
    });
    options.onProgress?.(end, data.samples.length);
    // cached media make a batch pure computation: let timers (the progress line) run between batches
    await new Promise((resolve) => setImmediate(resolve));
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

/** Samples per worker below which a worker's start-up (loading a tokenizer) is not worth it. */
const SAMPLES_PER_WORKER = 5000;

/**
 * checkDataset on worker threads, for large datasets: contiguous slices, one per worker, results
 * delivered in sample order. `tokenizer` is used in-process when one worker would do.
 */
export async function checkDatasetParallel(data: LoadedDataset, options: ParallelCheckOptions, tokenizer: () => Promise<PromptTokenizer>): Promise<CheckSummary> {
  const jobs = options.jobs ?? Math.min(8, availableParallelism(), Math.ceil(data.samples.length / SAMPLES_PER_WORKER));
  if (jobs <= 1) return checkDataset(data, { ...options, tokenizer: await tokenizer() });
  const t0 = performance.now();
  const summary = emptySummary(data.samples.length);
  const known: Record<number, SampleReport> = {};
  for (const p of data.problems) if (p.sample !== null) (known[p.sample] ??= { problems: [] }).problems.push(p);
  const size = Math.ceil(data.samples.length / jobs);
  const pending = new Map<number, SampleReport[]>();
  let next = 0;
  const deliver = () => {
    for (let batch = pending.get(next); batch; batch = pending.get(next)) {
      pending.delete(next);
      batch.forEach((r, k) => {
        tally(summary, next + k, r);
        options.onSample?.(next + k, r);
      });
      next += batch.length;
      options.onProgress?.(next, data.samples.length);
    }
  };
  const workers = Array.from({ length: jobs }, (_, j) => {
    const start = j * size;
    const input: WorkerInput = {
      modelDir: options.modelDir, format: data.format, profile: options.profile, mediaDir: data.mediaDir, decode: options.decode ?? false,
      start, samples: data.samples.slice(start, start + size), known,
    };
    return new Promise<void>((resolve, reject) => {
      const w = new Worker(new URL('./check-worker.js', import.meta.url), { workerData: input });
      w.on('message', (m: WorkerMessage) => {
        if (m.kind === 'error') {
          reject(new OvisError('internal', 'internal', `a check worker failed: ${m.message}`));
          return;
        }
        pending.set(m.start, m.reports);
        deliver();
      });
      w.on('error', reject);
      w.on('exit', (code) => (code === 0 ? resolve() : reject(new OvisError('internal', 'internal', `a check worker exited with ${code}`))));
    });
  });
  await Promise.all(workers);
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
}

function emptySummary(samples: number): CheckSummary {
  return { samples, errors: 0, warnings: 0, badSamples: 0, errorCodes: {}, warningCodes: {}, tokens: { text: 0, visual: 0, trained: 0, longest: 0, longestSample: null }, seconds: 0 };
}

function tally(s: CheckSummary, index: number, r: SampleReport): void {
  let bad = false;
  for (const p of r.problems) {
    const codes = p.severity === 'error' ? s.errorCodes : s.warningCodes;
    codes[p.code] = (codes[p.code] ?? 0) + 1;
    if (p.severity === 'error') {
      s.errors++;
      bad = true;
    } else {
      s.warnings++;
    }
  }
  if (bad) s.badSamples++;
  if (r.tokens) addTokens(s, index, r.tokens);
}

function addTokens(s: CheckSummary, index: number, t: SampleTokens): void {
  s.tokens.text += t.text;
  s.tokens.visual += t.visual;
  s.tokens.trained += t.trained;
  if (t.total > s.tokens.longest) {
    s.tokens.longest = t.total;
    s.tokens.longestSample = index;
  }
}

// `ovis data check` without the command line: every sample of a dataset through checkSample, a few
// dozen at a time (media headers are I/O), results delivered in sample order.
import type { PromptTokenizer } from '../prompt/encode.js';
import { checkSample, type SampleReport } from './check-sample.js';
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
  const summary: CheckSummary = {
    samples: data.samples.length,
    errors: 0,
    warnings: 0,
    badSamples: 0,
    errorCodes: {},
    warningCodes: {},
    tokens: { text: 0, visual: 0, trained: 0, longest: 0, longestSample: null },
    seconds: 0,
  };
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
  }
  summary.seconds = (performance.now() - t0) / 1000;
  return summary;
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

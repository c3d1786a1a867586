// A worker thread of `ovis data check` on a large dataset: tokenising is the expensive part and
// JavaScript runs it on one core, so a big dataset is cut into contiguous slices, one per worker,
// each with its own tokenizer. Results go back in batches, in sample order within the slice.
import { parentPort, workerData } from 'node:worker_threads';
import { OvisTokenizer } from '../prompt/tokenizer.js';
import { checkSample, type SampleReport } from './check-sample.js';
import { MediaSizer } from './media-size.js';
import type { Profile } from './profiles.js';
import type { DatasetFormat } from './types.js';

export interface WorkerInput {
  modelDir: string;
  format: DatasetFormat;
  profile: Profile;
  mediaDir: string;
  decode: boolean;
  /** index of samples[0] in the whole dataset */
  start: number;
  samples: unknown[];
  /** per-sample problems found while reading the file (bad JSON lines), by global index */
  known: Record<number, SampleReport>;
}

export type WorkerMessage = { kind: 'batch'; start: number; reports: SampleReport[] } | { kind: 'error'; message: string };

const BATCH = 64;

async function work(input: WorkerInput): Promise<void> {
  const tokenizer = await OvisTokenizer.load(input.modelDir);
  const ctx = { format: input.format, profile: input.profile, tokenizer, sizer: new MediaSizer({ decode: input.decode }), mediaDir: input.mediaDir };
  for (let at = 0; at < input.samples.length; at += BATCH) {
    const slice = input.samples.slice(at, at + BATCH);
    const reports = await Promise.all(slice.map((raw, k) => input.known[input.start + at + k] ?? checkSample(raw, input.start + at + k, ctx)));
    parentPort!.postMessage({ kind: 'batch', start: input.start + at, reports } satisfies WorkerMessage);
  }
}

if (parentPort) {
  work(workerData as WorkerInput).catch((e: unknown) => parentPort!.postMessage({ kind: 'error', message: (e as Error)?.message ?? String(e) } satisfies WorkerMessage));
}

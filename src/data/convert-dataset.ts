// `ovis data convert` without the command line: a whole dataset to the other format. Samples that
// fail the structure checks are left out and reported; the output is written to a temporary file and
// renamed into place, so a failed run never leaves half a dataset behind.
import { rename, writeFile } from 'node:fs/promises';
import { basename, dirname, extname, join, resolve, sep } from 'node:path';
import { UsageError } from '../errors.js';
import { swiftToUpstream, upstreamToSwift } from './convert-sample.js';
import type { LoadedDataset } from './read-dataset.js';
import { absolutePaths } from './sample-media.js';
import type { DatasetFormat, Problem, SwiftSample, UpstreamDataInfo, UpstreamSample } from './types.js';
import { validateSwift } from './validate-swift.js';
import { validateUpstream } from './validate-upstream.js';

export interface ConvertResult {
  written: number;
  /** samples left out (structure errors, or a frame list for ms-swift) */
  skipped: number;
  problems: Problem[];
  /** upstream only: the datainfo file written beside the output */
  dataInfoPath?: string;
  imageDir?: string;
}

export async function convertDataset(data: LoadedDataset, to: DatasetFormat, out: string, opts: { imageDir?: string } = {}): Promise<ConvertResult> {
  if (data.format === to) throw new UsageError(`${data.file} is already in ${to} format; nothing to convert`);
  const problems: Problem[] = [...data.problems];
  const valid: Array<{ index: number; sample: UpstreamSample | SwiftSample }> = [];
  data.samples.forEach((raw, index) => {
    if (raw === null) return;
    const v = data.format === 'upstream' ? validateUpstream(raw, index) : validateSwift(raw, index);
    const errors = v.problems.filter((p) => p.severity === 'error');
    problems.push(...errors);
    if (v.sample && errors.length === 0) valid.push({ index, sample: v.sample });
  });

  const converted: Array<UpstreamSample | SwiftSample> = [];
  let imageDir: string | undefined;
  if (to === 'swift') {
    for (const { index, sample } of valid) {
      const c = upstreamToSwift(sample as UpstreamSample, index, data.mediaDir);
      problems.push(...c.problems);
      if (c.sample) converted.push(c.sample);
    }
    await writeAtomically(out, converted.map((s) => JSON.stringify(s)).join('\n') + (converted.length ? '\n' : ''));
  } else {
    const all = valid.flatMap(({ sample }) => {
      const s = sample as SwiftSample;
      return absolutePaths([...(s.images ?? []), ...(s.videos ?? [])], data.mediaDir);
    });
    imageDir = resolve(opts.imageDir ?? commonFolder(all) ?? dirname(resolve(out)));
    for (const { index, sample } of valid) {
      const c = swiftToUpstream(sample as SwiftSample, index, data.mediaDir, imageDir);
      problems.push(...c.problems);
      if (c.sample) converted.push(c.sample);
    }
    await writeAtomically(out, JSON.stringify(converted, null, 1) + '\n');
  }
  const result: ConvertResult = { written: converted.length, skipped: data.samples.length - converted.length, problems, imageDir };
  if (to === 'upstream') {
    const name = basename(out, extname(out));
    const info: Record<string, UpstreamDataInfo> = {
      [name]: { meta_file: resolve(out), storage_type: 'hybrid', data_format: 'conversation', image_dir: imageDir! + sep },
    };
    result.dataInfoPath = join(dirname(resolve(out)), `${name}_datainfo.json`);
    await writeAtomically(result.dataInfoPath, JSON.stringify(info, null, 4) + '\n');
  }
  return result;
}

/** The deepest folder holding every path; undefined for no paths. */
export function commonFolder(paths: readonly string[]): string | undefined {
  if (paths.length === 0) return undefined;
  let parts = dirname(paths[0]).split(sep);
  for (const p of paths.slice(1)) {
    const other = dirname(p).split(sep);
    let k = 0;
    while (k < parts.length && k < other.length && parts[k] === other[k]) k++;
    parts = parts.slice(0, k);
  }
  return parts.join(sep) || sep;
}

async function writeAtomically(path: string, text: string): Promise<void> {
  const tmp = `${path}.tmp-${process.pid}`;
  await writeFile(tmp, text);
  await rename(tmp, path);
}

// Opens a training set in either format and says which it is:
//   * a JSON list of samples: upstream meta file (image_dir: --image-dir, else the file's folder);
//   * a JSON object of {name: {meta_file, image_dir, data_format}}: an upstream datainfo file; its
//     relative meta_file and image_dir are taken from the datainfo file's folder (upstream itself
//     takes them from the training process's working directory; the datainfo's folder is the one
//     stable choice a checker has);
//   * anything else: JSONL, one ms-swift sample per line (relative media paths from the file's folder).
import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { InputError, UsageError } from '../errors.js';
import type { DatasetFormat, Problem, UpstreamDataInfo } from './types.js';

export interface LoadedDataset {
  format: DatasetFormat;
  /** the file the samples came from (the meta_file for a datainfo) */
  file: string;
  /** raw samples; `null` for a JSONL line that is not JSON (reported in `problems`) */
  samples: unknown[];
  /** upstream: image_dir; swift: the folder relative paths are taken from */
  mediaDir: string;
  /** set when a datainfo file was given */
  dataInfo?: { name: string; info: UpstreamDataInfo };
  problems: Problem[];
}

export async function loadDataset(path: string, opts: { format?: DatasetFormat; imageDir?: string } = {}): Promise<LoadedDataset> {
  const text = await readText(path);
  const dir = dirname(resolve(path));
  let parsed: unknown;
  let isJson = opts.format !== 'swift';
  if (isJson) {
    try {
      parsed = JSON.parse(text);
    } catch {
      isJson = false;
    }
  }
  if (isJson && Array.isArray(parsed)) {
    return { format: 'upstream', file: path, samples: parsed, mediaDir: resolve(opts.imageDir ?? dir), problems: [] };
  }
  if (isJson && isDataInfo(parsed)) {
    const names = Object.keys(parsed);
    if (names.length !== 1) {
      throw new UsageError(`${path} describes ${names.length} datasets (${names.join(', ')}); check one at a time: give its meta_file and --image-dir`);
    }
    const info = parsed[names[0]];
    if (info.data_format !== 'conversation') {
      throw new InputError(`dataset ${names[0]} in ${path} has data_format ${JSON.stringify(info.data_format)}; ovis data checks conversation datasets only`);
    }
    const meta = isAbsolute(info.meta_file) ? info.meta_file : resolve(dir, info.meta_file);
    const inner = await loadDataset(meta, { format: 'upstream', imageDir: opts.imageDir ?? (isAbsolute(info.image_dir) ? info.image_dir : resolve(dir, info.image_dir)) });
    if (inner.format !== 'upstream') throw new InputError(`meta_file ${meta} is not a JSON list of samples`);
    return { ...inner, dataInfo: { name: names[0], info } };
  }
  if (opts.format === 'upstream') {
    throw new InputError(`${path} is not an upstream dataset: expected a JSON list of samples or a datainfo object`);
  }
  return { format: 'swift', file: path, mediaDir: resolve(opts.imageDir ?? dir), ...parseJsonl(text, path) };
}

function parseJsonl(text: string, path: string): { samples: unknown[]; problems: Problem[] } {
  const samples: unknown[] = [];
  const problems: Problem[] = [];
  const lines = text.split('\n');
  lines.forEach((line, n) => {
    if (line.trim() === '') return;
    try {
      samples.push(JSON.parse(line));
    } catch (err) {
      problems.push({
        severity: 'error',
        code: 'bad-json',
        sample: samples.length,
        message: `${path}:${n + 1} is not JSON (${(err as Error).message})`,
        detail: { line: n + 1 },
      });
      samples.push(null);
    }
  });
  return { samples, problems };
}

function isDataInfo(v: unknown): v is Record<string, UpstreamDataInfo> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const values = Object.values(v);
  return values.length > 0 && values.every((e) => typeof e === 'object' && e !== null && typeof (e as UpstreamDataInfo).meta_file === 'string' && typeof (e as UpstreamDataInfo).image_dir === 'string');
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read dataset ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`, { cause: err });
  }
}

// Reads a model directory's files (JSON, template text); a missing or malformed required file is a ModelError (exit 4).
import { readFile } from 'node:fs/promises';
import { ModelError } from '../errors.js';

/** Parsed JSON of `path`; for an optional file that does not exist, undefined. */
export async function readJson<T>(path: string, required: true): Promise<T>;
export async function readJson<T>(path: string, required: false): Promise<T | undefined>;
export async function readJson<T>(path: string, required: boolean): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (!required && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new ModelError(`${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
}

/** Text of an optional file; undefined when it does not exist. */
export async function readOptionalText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new ModelError(`cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
}

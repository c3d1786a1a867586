// Copies of the fixture model directory with edited files, for error-path and layout tests.
// A copy is about 22 MB: use withModel (removes it when the test is done), or removeTempDir.
import { copyFileSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './cli.js';
import { removeTempDir, tempDir } from './temp-dirs.js';

/** A temp copy of the fixture (without expected.safetensors) with `files` written over it; removed
 * at process exit at the latest (see temp-dirs.ts). */
export function modelWith(files: Record<string, Buffer | string>): string {
  const dir = tempDir('ovis-model-');
  for (const f of readdirSync(fixtureDir)) {
    if (statSync(join(fixtureDir, f)).isFile() && f !== 'expected.safetensors') copyFileSync(join(fixtureDir, f), join(dir, f));
  }
  for (const [name, data] of Object.entries(files)) writeFileSync(join(dir, name), data);
  return dir;
}

/** Runs `fn` on a copy made by modelWith, then removes the copy (pass or fail). */
export async function withModel<T>(files: Record<string, Buffer | string>, fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = modelWith(files);
  try {
    return await fn(dir);
  } finally {
    removeTempDir(dir);
  }
}

/** The fixture's safetensors parts: parsed header and the data blob. */
export function fixtureWeights(): { header: Record<string, any>; blob: Buffer } {
  const buf = readFileSync(join(fixtureDir, 'model.safetensors'));
  const n = Number(buf.readBigUInt64LE(0));
  return { header: JSON.parse(buf.subarray(8, 8 + n).toString('utf8')), blob: buf.subarray(8 + n) };
}

/** Parameters and data bytes as the fixture's safetensors header declares them (every tensor once). */
export function fixtureWeightTotals(): { params: number; bytes: number } {
  const { header } = fixtureWeights();
  let params = 0;
  let bytes = 0;
  for (const [name, t] of Object.entries<any>(header)) {
    if (name === '__metadata__') continue;
    params += t.shape.reduce((a: number, b: number) => a * b, 1);
    bytes += t.data_offsets[1] - t.data_offsets[0];
  }
  return { params, bytes };
}

/** A safetensors file from a header and blob (header padded to 8 bytes as writers do). */
export function safetensorsBytes(header: Record<string, any>, blob: Buffer): Buffer {
  let text = JSON.stringify(header);
  text += ' '.repeat((8 - (text.length % 8)) % 8);
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(text.length));
  return Buffer.concat([len, Buffer.from(text), blob]);
}

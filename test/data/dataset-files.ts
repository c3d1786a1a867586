// Datasets made by the tests, in a temporary folder: real images (the fixture's), broken ones, and
// both formats written exactly as users write them.
import { copyFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from '../helpers/cli.js';

export const inputs = join(fixtureDir, 'inputs');

/** Copies the fixture's images into `dir` and adds a corrupt PNG and an empty file. */
export function mediaFolder(dir: string): void {
  for (const f of ['photo.jpg', 'small.png', 'tall.png', 'frame0.png', 'frame1.png', 'frame2.png', 'frame3.png']) copyFileSync(join(inputs, f), join(dir, f));
  // a PNG signature followed by garbage: the header cannot be read
  writeFileSync(join(dir, 'corrupt.png'), Buffer.concat([Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]), Buffer.from('not really a png at all')]));
  writeFileSync(join(dir, 'empty.jpg'), '');
}

export function writeUpstream(dir: string, name: string, samples: unknown[]): string {
  const path = join(dir, name);
  writeFileSync(path, JSON.stringify(samples, null, 1));
  return path;
}

export function writeSwift(dir: string, name: string, samples: unknown[], extraLines: string[] = []): string {
  const path = join(dir, name);
  writeFileSync(path, [...samples.map((s) => JSON.stringify(s)), ...extraLines].join('\n') + '\n');
  return path;
}

export const human = (value: string) => ({ from: 'human', value });
export const gpt = (value: string) => ({ from: 'gpt', value });
export const user = (content: string) => ({ role: 'user', content });
export const assistant = (content: string, loss?: boolean) => (loss === undefined ? { role: 'assistant', content } : { role: 'assistant', content, loss });

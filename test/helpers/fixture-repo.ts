// The fixture model as a hub repository, and cache paths and checks shared by the download tests.
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from './cli.js';
import type { HubRepo } from './hub-server.js';

export const REPO = 'AIDC-AI/Ovis2.5-2B';

/** The files of the released repository's kind: the fixture without its test data. */
export const modelFile = (rel: string) => !['expected.safetensors', 'cases.json', 'README.md'].includes(rel) && !rel.startsWith('inputs/');
export const fixtureRepo = (over: Partial<HubRepo> = {}): HubRepo => ({ id: REPO, dir: fixtureDir, files: modelFile, ...over });
export const modelFiles = readdirSync(fixtureDir).filter((f) => modelFile(f) && statSync(join(fixtureDir, f)).isFile()).sort();
export const weightsSha256 = createHash('sha256').update(readFileSync(join(fixtureDir, 'model.safetensors'))).digest('hex');

export const repoDir = (cache: string, id = REPO) => join(cache, `models--${id.replace('/', '--')}`);

/** The snapshot's files: each a relative symlink into blobs/, named by the content's hash. */
export function snapshotLinks(cache: string, commit: string, id = REPO): Record<string, string> {
  const dir = join(repoDir(cache, id), 'snapshots', commit);
  const out: Record<string, string> = {};
  for (const f of readdirSync(dir).sort()) {
    if (lstatSync(join(dir, f)).isSymbolicLink()) out[f] = readlinkSync(join(dir, f));
  }
  return out;
}

/** The git blob sha1 of a fixture file: its blob name for a file not stored with LFS. */
export function gitOid(file: string): string {
  const data = readFileSync(join(fixtureDir, file));
  return createHash('sha1').update(`blob ${data.length}\0`).update(data).digest('hex');
}

/** The greedy question whose reference answer the fixture holds (case "text"). */
export const greedyArgs = ['--temperature', '0', '--max-new-tokens', '8', '--json', 'Describe the Yellow Mountain in one sentence.'];

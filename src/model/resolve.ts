// --model (or $OVIS_MODEL, or the default AIDC-AI/Ovis2.5-2B) to a checked local model directory:
// a directory path as given; a repo id (ORG/NAME[@REV]) from the Hugging Face cache, else from the
// ModelScope cache; else, on a terminal, downloaded after asking, and otherwise an error that gives
// the `ovis pull` command to run.
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import { ModelError } from '../errors.js';
import { cachedSnapshot, scanRepo } from './hf-cache.js';
import { hubEnv, type HubEnv } from './hub-env.js';
import { modelscopeDir } from './modelscope-cache.js';
import { DEFAULT_MODEL, formatRef, parseRepoRef, type RepoRef } from './repo-ref.js';
import { checkModelDir, validateModelDir } from './validate.js';

/** A model named by a repo id that is not (or only partly) downloaded, and no download was offered. */
export class NotDownloadedError extends ModelError {}

export interface ResolvedModel {
  dir: string;
  source: 'directory' | 'hf-cache' | 'modelscope';
  /** The repository, when the model was named by one. */
  ref?: RepoRef;
}

export interface ResolveOptions {
  env?: NodeJS.ProcessEnv;
  /** How to get a model that is not downloaded; without it, an error naming `ovis pull`. Resolves
   * to the snapshot directory, or rejects (declined, interrupted, failed). */
  download?: (ref: RepoRef, hub: HubEnv, incomplete: boolean) => Promise<string>;
}

/** The model name in effect: --model, else $OVIS_MODEL, else the default. */
export function modelName(given: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  return given || env.OVIS_MODEL || DEFAULT_MODEL;
}

export async function resolveModel(given: string | undefined, opts: ResolveOptions = {}): Promise<ResolvedModel> {
  const env = opts.env ?? process.env;
  const name = modelName(given, env);
  const path = resolve(name.startsWith('~/') ? homedir() + name.slice(1) : name);
  if (existsSync(path) && statSync(path).isDirectory()) {
    await validateModelDir(path);
    return { dir: path, source: 'directory' };
  }
  const ref = parseRepoRef(name);
  if (!ref) {
    if (existsSync(path)) throw new ModelError(`${path} is a file, not a model directory: pass --model with the directory that holds config.json and the weights`);
    throw new ModelError(`model directory ${path} does not exist: pass --model with a downloaded Ovis2.5 model directory, or a model name such as ${DEFAULT_MODEL}`);
  }
  const hub = hubEnv(env);
  const pull = `ovis pull ${formatRef(ref)}`;
  let incomplete = false;
  const snap = cachedSnapshot(hub.cacheDir, ref);
  if (snap) {
    const check = await checkModelDir(snap.dir);
    if (check.ok) return { dir: snap.dir, source: 'hf-cache', ref };
    // Unsupported or broken files are reported as they are; missing ones are downloaded below.
    if (check.kind !== 'incomplete') await validateModelDir(snap.dir);
    incomplete = true;
  } else {
    // A pull stopped before its end leaves partial blobs, or a snapshot no ref points at yet.
    const repo = scanRepo(hub.cacheDir, ref.id);
    incomplete = repo.partialBytes > 0 || repo.revisions.some((r) => r.refs.length === 0);
  }
  if (!ref.explicitRevision) {
    const ms = modelscopeDir(hub.modelscopeDir, ref.id);
    if (ms) {
      await validateModelDir(ms, (kind) => (kind === 'unsupported' ? undefined : `download the ModelScope copy again, or run \`${pull}\` to use the Hugging Face cache instead`));
      return { dir: ms, source: 'modelscope', ref };
    }
  }
  const what = incomplete ? `${formatRef(ref)} is only partly downloaded (in ${hub.cacheDir})` : `${formatRef(ref)} is not downloaded (not in ${hub.cacheDir})`;
  if (hub.offline) throw new NotDownloadedError(`${what}, and HF_HUB_OFFLINE is set: run \`${pull}\` while online, or pass --model with a local model directory`);
  if (!opts.download) throw new NotDownloadedError(`${what}: run \`${pull}\` first, or pass --model with a local model directory`);
  const dir = await opts.download(ref, hub, incomplete);
  await validateModelDir(dir, (kind) => (kind === 'incomplete' ? `run \`${pull}\` again to fetch what is missing` : undefined));
  return { dir, source: 'hf-cache', ref };
}

// `ovis pull`: the files of a model that ovis needs (or all of them), from the hub into the cache
// in huggingface_hub's layout (hf-cache.ts), resumable, verified, several files at a time.
import { downloadFile } from '@huggingface/hub';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ModelError } from '../errors.js';
import { bytesPresent, downloadBlob } from './download-blob.js';
import { blobLinkTarget, blobPath, repoFolder, snapshotPath } from './hf-cache.js';
import { blobName, hubError, hubFetch, remoteSnapshot, type RemoteFile } from './hub-client.js';
import type { HubEnv } from './hub-env.js';
import { acquirePullLock } from './pull-lock.js';
import { COMMIT, formatRef, type RepoRef } from './repo-ref.js';

/** Files the CLI and engine read, besides the weights (src/prompt, src/model, native/src/model). */
const MODEL_FILES = new Set([
  'config.json', 'generation_config.json', 'preprocessor_config.json',
  'tokenizer.json', 'tokenizer_config.json', 'special_tokens_map.json', 'added_tokens.json',
  'chat_template.json', 'chat_template.jinja', 'model.safetensors.index.json', 'model.safetensors',
]);
const INDEX = 'model.safetensors.index.json';

export interface PullPlan {
  env: HubEnv;
  ref: RepoRef;
  commit: string;
  files: RemoteFile[];
  /** Bytes of all the files, and of what is not in the cache yet. */
  totalBytes: number;
  missingBytes: number;
  /** Where the model will be. */
  snapshotDir: string;
}

/** Which files of the commit to fetch, and how much of them the cache already has. `all`: every
 * file of the repository (the Python reference code, README, images), not just what ovis reads. */
export async function planPull(env: HubEnv, ref: RepoRef, opts: { all?: boolean } = {}): Promise<PullPlan> {
  if (env.offline) {
    throw new ModelError(`HF_HUB_OFFLINE is set, so ${formatRef(ref)} cannot be downloaded: unset HF_HUB_OFFLINE (or set it to 0) to download it`);
  }
  const { commit, files: all } = await remoteSnapshot(env, ref);
  let files = all;
  if (!opts.all) {
    if (!all.some((f) => f.path === 'config.json')) {
      throw new ModelError(`${formatRef(ref)} on ${env.endpoint} has no config.json: it is not a model ovis can run (Ovis2.5: AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B)`);
    }
    await checkRemoteConfig(env, ref, commit, all.find((f) => f.path === 'config.json')!);
    // The weights: the shards the index names (a repository may hold other safetensors files), or
    // model.safetensors without one.
    const index = all.find((f) => f.path === INDEX);
    const shards = index ? await shardsOf(env, ref, commit, index) : new Set<string>();
    const missing = [...shards].filter((s) => !all.some((f) => f.path === s));
    if (missing.length) throw new ModelError(`${formatRef(ref)} is broken on ${env.endpoint}: ${INDEX} names ${missing.join(', ')}, which the repository does not have`);
    files = all.filter((f) => MODEL_FILES.has(f.path) || shards.has(f.path));
  }
  const totalBytes = files.reduce((s, f) => s + f.size, 0);
  const missingBytes = files.reduce((s, f) => s + f.size - bytesPresent(env.cacheDir, ref.id, f), 0);
  return { env, ref, commit, files, totalBytes, missingBytes, snapshotDir: join(repoFolder(env.cacheDir, ref.id), 'snapshots', commit) };
}

export interface PullProgress {
  /** Bytes in the cache so far, of `total`; `resumed` of them were there before this pull started. */
  done: number;
  total: number;
  resumed: number;
  /** Files complete, of `files`. */
  filesDone: number;
  files: number;
  /** The files being fetched now. */
  active: string[];
}

/** Fetches what the plan lacks, links the snapshot, and points the ref at the commit last (so a
 * ref names only a complete snapshot). Resolves to the snapshot directory. */
export interface PullOptions {
  signal: AbortSignal;
  onProgress?: (p: PullProgress) => void;
  /** Called once when another ovis process is pulling the same model (this one waits for it). */
  onWait?: (pid: number) => void;
  /** Files fetched at once (default 4). */
  concurrency?: number;
}

export async function runPull(plan: PullPlan, opts: PullOptions): Promise<string> {
  const { env, ref, commit } = plan;
  const release = await acquirePullLock(env.cacheDir, ref.id, opts.signal, opts.onWait);
  // The first failure stops the other downloads (their bytes are kept for the next try).
  const stop = new AbortController();
  const signal = AbortSignal.any([opts.signal, stop.signal]);
  try {
    const resumed = plan.files.reduce((s, f) => s + bytesPresent(env.cacheDir, ref.id, f), 0);
    const p: PullProgress = { done: resumed, total: plan.totalBytes, resumed, filesDone: 0, files: plan.files.length, active: [] };
    const report = () => opts.onProgress?.({ ...p, active: [...p.active] });
    const fetchOne = async (f: RemoteFile) => {
      p.active.push(f.path);
      report();
      await downloadBlob({ env, ref, commit, file: f, signal, onBytes: (n) => { p.done += n; report(); } });
      await linkIntoSnapshot(env.cacheDir, ref.id, commit, f);
      p.active.splice(p.active.indexOf(f.path), 1);
      p.filesDone += 1;
      report();
    };
    // The small files first; then the weights, the biggest first, so that the last minutes are not
    // one big file alone.
    const small = plan.files.filter((f) => !f.path.endsWith('.safetensors'));
    const weights = plan.files.filter((f) => f.path.endsWith('.safetensors')).sort((x, y) => y.size - x.size);
    await pool([...small, ...weights], opts.concurrency ?? 4, fetchOne, stop);
    if (!COMMIT.test(ref.revision)) {
      const refFile = join(repoFolder(env.cacheDir, ref.id), 'refs', ...ref.revision.split('/'));
      await mkdir(dirname(refFile), { recursive: true });
      await writeFile(refFile, commit);
    }
    return plan.snapshotDir;
  } finally {
    await release();
  }
}

/** Refuses, before gigabytes are fetched, a repository that holds no Ovis2.5 model. */
async function checkRemoteConfig(env: HubEnv, ref: RepoRef, commit: string, file: RemoteFile): Promise<void> {
  let config: { model_type?: unknown };
  try {
    config = JSON.parse((await smallFileText(env, ref, commit, file)) || '{}');
  } catch (e) {
    if (e instanceof SyntaxError) throw new ModelError(`config.json of ${formatRef(ref)} on ${env.endpoint} is not valid JSON: it is not a model ovis can run`);
    throw e;
  }
  if (config.model_type !== 'ovis2_5') {
    const what = typeof config.model_type === 'string' && config.model_type.startsWith('ovis') ? 'another Ovis generation, which ovis does not support yet' : 'not an Ovis2.5 model';
    throw new ModelError(`${formatRef(ref)} is ${what} (model_type ${JSON.stringify(config.model_type ?? null)}): ovis runs Ovis2.5 (AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B); \`ovis pull --all\` downloads it anyway`);
  }
}

/** A small file of the commit: from the cache when it is there, else fetched (not cached: the
 * pull itself stores it, verified). */
async function smallFileText(env: HubEnv, ref: RepoRef, commit: string, file: RemoteFile): Promise<string> {
  if (bytesPresent(env.cacheDir, ref.id, file) === file.size && existsSync(blobPath(env.cacheDir, ref.id, blobName(file)))) {
    return readFileSync(blobPath(env.cacheDir, ref.id, blobName(file)), 'utf8');
  }
  const path = file.path;
  try {
    const blob = await downloadFile({ repo: { type: 'model', name: ref.id }, path, revision: commit, hubUrl: env.endpoint, fetch: hubFetch(env) });
    return (await blob?.text()) ?? '';
  } catch (e) {
    throw hubError(e, env, ref);
  }
}

/** The shard files the commit's index names (its weight_map's values), read without caching it. */
async function shardsOf(env: HubEnv, ref: RepoRef, commit: string, index: RemoteFile): Promise<Set<string>> {
  const text = await smallFileText(env, ref, commit, index);
  try {
    const index = JSON.parse(text) as { weight_map?: Record<string, string> };
    if (!index.weight_map || typeof index.weight_map !== 'object') throw new Error('it has no weight_map');
    return new Set(Object.values(index.weight_map));
  } catch (e) {
    throw new ModelError(`${INDEX} of ${formatRef(ref)} on ${env.endpoint} is not a valid index (${(e as Error).message})`);
  }
}

/** snapshots/<commit>/<path> → the blob, as a relative symlink (replacing an older one). */
async function linkIntoSnapshot(cacheDir: string, id: string, commit: string, f: RemoteFile): Promise<void> {
  const link = snapshotPath(cacheDir, id, commit, f.path);
  const target = blobLinkTarget(cacheDir, id, commit, f.path, blobName(f));
  await mkdir(dirname(link), { recursive: true });
  try {
    if ((await readlink(link)) === target) return;
  } catch {
    // no link yet, or a copied file
  }
  await rm(link, { force: true });
  await symlink(target, link);
}

/** Runs `work` on every item, at most `n` at a time; the first failure stops new work and is thrown
 * once the running ones have settled (their partial downloads are kept). */
async function pool<T>(items: T[], n: number, work: (item: T) => Promise<void>, stop: AbortController): Promise<void> {
  let next = 0;
  let failure: unknown;
  const lane = async () => {
    while (failure === undefined && next < items.length) {
      const item = items[next++];
      try {
        await work(item);
      } catch (e) {
        failure ??= e;
        stop.abort();
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, lane));
  if (failure !== undefined) throw failure;
}

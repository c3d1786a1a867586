// One file of a commit into the cache's blobs/: appended to blobs/<etag>.incomplete from where an
// earlier, interrupted download stopped (a Range request), checked against the hub's size and hash
// (sha256 for LFS files, the git blob sha1 for the others), then renamed into place. A download that
// was cut short keeps its bytes for the next try; one whose bytes are wrong is removed.
import { downloadFile } from '@huggingface/hub';
import { createHash, type Hash } from 'node:crypto';
import { createReadStream, existsSync, statSync } from 'node:fs';
import { mkdir, open, rename, rm, truncate } from 'node:fs/promises';
import { dirname } from 'node:path';
import { InterruptedError, NetworkError } from '../errors.js';
import { blobPath } from './hf-cache.js';
import { blobName, hubError, hubFetch, type RemoteFile } from './hub-client.js';
import type { HubEnv } from './hub-env.js';
import type { RepoRef } from './repo-ref.js';

export interface BlobDownload {
  env: HubEnv;
  ref: RepoRef;
  commit: string;
  file: RemoteFile;
  signal: AbortSignal;
  /** Called with each chunk's length in bytes as it is written (resumed bytes are not reported). */
  onBytes: (n: number) => void;
}

/** Bytes of `file` already in the cache: its size when complete, else what a partial download kept. */
export function bytesPresent(cacheDir: string, id: string, file: RemoteFile): number {
  const final = blobPath(cacheDir, id, blobName(file));
  if (sizeOf(final) === file.size) return file.size;
  const partial = sizeOf(`${final}.incomplete`);
  return partial !== undefined && partial <= file.size ? partial : 0;
}

export async function downloadBlob(d: BlobDownload): Promise<void> {
  const { env, file } = d;
  const final = blobPath(env.cacheDir, d.ref.id, blobName(file));
  if (sizeOf(final) === file.size) return;
  const partial = `${final}.incomplete`;
  await mkdir(dirname(final), { recursive: true });
  let start = sizeOf(partial) ?? 0;
  if (start > file.size) {
    await truncate(partial, 0);
    start = 0;
  }
  const hash = newHash(file);
  if (start > 0) await hashFile(partial, hash);

  if (start < file.size) await fetchInto(d, partial, start, hash);
  const got = sizeOf(partial) ?? 0;
  if (got !== file.size) {
    throw new NetworkError(`the download of ${file.path} ended early (${got.toLocaleString('en-US')} of ${file.size.toLocaleString('en-US')} bytes); run the same command again to resume it`);
  }
  const digest = hash.digest('hex');
  const expected = file.lfsSha256 ?? file.oid;
  if (expected && digest !== expected) {
    await rm(partial, { force: true });
    const kind = file.lfsSha256 ? 'sha256' : 'git sha1';
    throw new NetworkError(`${file.path} arrived corrupted (${kind} ${digest}, expected ${expected}); the bad download was removed: run the same command again to fetch it anew`);
  }
  await rename(partial, final);
}

/** Streams bytes [start, size) of the file onto the end of `partial`, feeding `hash`. */
async function fetchInto(d: BlobDownload, partial: string, start: number, hash: Hash): Promise<void> {
  const { env, file } = d;
  let blob;
  try {
    blob = await downloadFile({ repo: { type: 'model', name: d.ref.id }, path: file.path, revision: d.commit, hubUrl: env.endpoint, fetch: hubFetch(env) });
  } catch (e) {
    throw hubError(e, env, d.ref);
  }
  if (!blob) throw new NetworkError(`${env.endpoint} no longer has ${file.path} in ${d.ref.id} at ${d.commit}`);
  const reader = blob.slice(start).stream().getReader();
  const cancel = () => void reader.cancel().catch(() => {});
  d.signal.addEventListener('abort', cancel, { once: true });
  const out = await open(partial, 'a');
  let written = start;
  try {
    for (;;) {
      if (d.signal.aborted) throw new InterruptedError();
      let chunk;
      try {
        chunk = await reader.read();
      } catch (e) {
        if (d.signal.aborted) throw new InterruptedError();
        throw new NetworkError(`the download of ${file.path} broke off at ${written.toLocaleString('en-US')} of ${file.size.toLocaleString('en-US')} bytes (${describe(e)}); run the same command again to resume it`, { cause: e });
      }
      if (chunk.done) break;
      if (written + chunk.value.length > file.size) {
        // More bytes than the file has: the server ignored the Range header (or sent something else).
        await out.close().catch(() => {});
        await rm(partial, { force: true });
        throw new NetworkError(`${env.endpoint} sent more than the ${file.size.toLocaleString('en-US')} bytes of ${file.path}; the download was removed: run the same command again`);
      }
      await out.write(chunk.value);
      hash.update(chunk.value);
      written += chunk.value.length;
      d.onBytes(chunk.value.length);
    }
    if (d.signal.aborted) throw new InterruptedError();
  } finally {
    d.signal.removeEventListener('abort', cancel);
    await out.close().catch(() => {});
  }
}

/** sha256 of the content for LFS files; for the others git's blob hash, sha1("blob <size>\0" + content). */
function newHash(file: RemoteFile): Hash {
  if (file.lfsSha256) return createHash('sha256');
  return createHash('sha1').update(`blob ${file.size}\0`);
}

function hashFile(path: string, hash: Hash): Promise<void> {
  return new Promise((resolve, reject) => {
    createReadStream(path)
      .on('data', (c) => hash.update(c))
      .on('end', () => resolve())
      .on('error', reject);
  });
}

function sizeOf(path: string): number | undefined {
  try {
    return existsSync(path) ? statSync(path).size : undefined;
  } catch {
    return undefined;
  }
}

function describe(e: unknown): string {
  const cause = (e as { cause?: { code?: string } })?.cause;
  return cause?.code ?? (e instanceof Error ? e.message : String(e));
}

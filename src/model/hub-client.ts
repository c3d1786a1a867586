// Talking to the hub (or a mirror) through @huggingface/hub: the commit a revision names and the
// files of that commit, with the hub's failures turned into messages that say what to do.
import { HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { ModelError, NetworkError } from '../errors.js';
import type { HubEnv } from './hub-env.js';
import { formatRef, type RepoRef } from './repo-ref.js';

export interface RemoteFile {
  path: string;
  size: number;
  /** The git blob sha1 of the file (of its LFS pointer, for LFS files). */
  oid: string;
  /** The sha256 of the content, for files stored with LFS (weights). */
  lfsSha256?: string;
}

/** The name huggingface_hub gives the file's blob in the cache: its etag, which the hub sets to the
 * LFS sha256 for LFS files and the git blob sha1 for the others. */
export const blobName = (f: RemoteFile) => f.lfsSha256 ?? f.oid;

/** fetch with the user's token on requests to the hub itself. Passing the token to the library
 * instead would reject tokens that do not start with hf_ (older organisation tokens, mirrors). The
 * fetch standard drops Authorization on a redirect to another origin (the hub's storage). */
export function hubFetch(env: HubEnv): typeof fetch {
  const origin = new URL(env.endpoint).origin;
  return (input, init) => {
    const url = new URL(typeof input === 'string' ? input : input instanceof URL ? input.href : input.url);
    if (!env.token || url.origin !== origin) return fetch(input, init);
    const headers = new Headers(init?.headers);
    headers.set('Authorization', `Bearer ${env.token}`);
    return fetch(input, { ...init, headers });
  };
}

/** The commit `ref` names on the hub, and the files of that commit. */
export async function remoteSnapshot(env: HubEnv, ref: RepoRef): Promise<{ commit: string; files: RemoteFile[] }> {
  const common = { hubUrl: env.endpoint, fetch: hubFetch(env) };
  try {
    const info = await modelInfo({ ...common, name: ref.id, revision: ref.revision, additionalFields: ['sha'] });
    const commit = (info as { sha?: string }).sha;
    if (!commit) throw new NetworkError(`${env.endpoint} did not say which commit ${formatRef(ref)} is (no "sha" in its answer): is HF_ENDPOINT a Hugging Face hub or mirror?`);
    const files: RemoteFile[] = [];
    for await (const f of listFiles({ ...common, repo: { type: 'model', name: ref.id }, revision: commit, recursive: true })) {
      if (f.type !== 'file') continue;
      files.push({ path: f.path, size: f.size, oid: f.oid ?? '', lfsSha256: f.lfs?.oid });
    }
    return { commit, files };
  } catch (e) {
    throw hubError(e, env, ref);
  }
}

/** A hub failure as an ovis error: a name that does not exist is the user's to fix (exit 4), as is
 * a refused token; anything else is a network failure (exit 6). */
export function hubError(e: unknown, env: HubEnv, ref: RepoRef): Error {
  if (e instanceof ModelError || e instanceof NetworkError) return e;
  const name = formatRef(ref);
  if (e instanceof HubApiError) {
    // The hub's own words, without the URL the library appends (which itself says "revision").
    if (e.statusCode === 404 && /revision|rev id/i.test(firstLine(e.message))) {
      return new ModelError(`${ref.id} has no revision ${JSON.stringify(ref.revision)} on ${env.endpoint}: give a branch, tag or commit that exists, or leave out @REVISION for main`);
    }
    if (e.statusCode === 401 || e.statusCode === 403 || e.statusCode === 404) {
      const refused = e.statusCode !== 404;
      const auth = !env.token
        ? 'if it is private or gated, set HF_TOKEN to a token with access'
        : refused ? 'the token in HF_TOKEN (or the saved login) was refused or has no access to it' : 'if it is private, the token in HF_TOKEN (or the saved login) needs access to it';
      return new ModelError(`${env.endpoint} has no model ${name} (HTTP ${e.statusCode}): check the name (e.g. AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B); ${auth}`);
    }
    return new NetworkError(`${env.endpoint} failed for ${name} (HTTP ${e.statusCode}): ${firstLine(e.message)}; try again later, or set HF_ENDPOINT to a mirror`, { cause: e });
  }
  const cause = (e as { cause?: { code?: string; message?: string } })?.cause;
  const why = cause?.code ?? cause?.message ?? (e as Error)?.message ?? String(e);
  return new NetworkError(`cannot reach ${env.endpoint} (${why}) to download ${name}: check the network, set HF_ENDPOINT to a mirror, or set HF_HUB_OFFLINE=1 to use only what is already downloaded`, { cause: e });
}

const firstLine = (s: string) => s.split('\n')[0].replace(/\.? ?URL: .*$/, '');

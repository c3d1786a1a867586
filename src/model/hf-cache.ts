// The Hugging Face hub cache, laid out exactly as huggingface_hub lays it out, so that weights
// fetched by huggingface-cli, transformers or vLLM are used as they are and ours are theirs:
//
//   <cache>/models--ORG--NAME/
//     refs/<branch or tag>        the commit (40 hex) the name pointed at when it was downloaded
//     snapshots/<commit>/<path>   a relative symlink to ../../blobs/<etag> (one more ../ per subfolder)
//     blobs/<etag>                the file's bytes, named by its LFS sha256 or git blob sha1
//     blobs/<etag>.incomplete     a download in progress (resumed from its length)
import { existsSync, lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import { COMMIT, type RepoRef } from './repo-ref.js';

/** `<cache>/models--ORG--NAME`. */
export function repoFolder(cacheDir: string, id: string): string {
  return join(cacheDir, `models--${id.split('/').join('--')}`);
}

/** The repo id of a `models--ORG--NAME` folder name, or undefined for anything else. */
export function repoIdOfFolder(name: string): string | undefined {
  const m = /^models--([^-].*?)--(.+)$/.exec(name);
  return m ? `${m[1]}/${m[2]}` : undefined;
}

/** The commit a reference names in the cache: a commit that has a snapshot, or the content of
 * refs/<revision>. Undefined when the cache does not know it. */
export function cachedCommit(cacheDir: string, ref: RepoRef): string | undefined {
  const folder = repoFolder(cacheDir, ref.id);
  if (COMMIT.test(ref.revision)) return existsSync(join(folder, 'snapshots', ref.revision)) ? ref.revision : undefined;
  try {
    const commit = readFileSync(join(folder, 'refs', ref.revision), 'utf8').trim();
    return COMMIT.test(commit) ? commit : undefined;
  } catch {
    return undefined;
  }
}

/** The snapshot directory a reference resolves to in the cache, if it has one. */
export function cachedSnapshot(cacheDir: string, ref: RepoRef): { dir: string; commit: string } | undefined {
  const commit = cachedCommit(cacheDir, ref);
  if (!commit) return undefined;
  const dir = join(repoFolder(cacheDir, ref.id), 'snapshots', commit);
  return existsSync(dir) ? { dir, commit } : undefined;
}

export function blobPath(cacheDir: string, id: string, etag: string): string {
  return join(repoFolder(cacheDir, id), 'blobs', etag);
}

export function snapshotPath(cacheDir: string, id: string, commit: string, path: string): string {
  return join(repoFolder(cacheDir, id), 'snapshots', commit, ...path.split('/'));
}

/** The relative link target from a snapshot file to its blob (what huggingface_hub writes). */
export function blobLinkTarget(cacheDir: string, id: string, commit: string, path: string, etag: string): string {
  return relative(dirname(snapshotPath(cacheDir, id, commit, path)), blobPath(cacheDir, id, etag));
}

export interface CachedFile {
  /** Path inside the repository, with '/'. */
  path: string;
  /** The blob it links to (or the file itself, when a copy rather than a link). */
  blob: string;
  size: number;
}

export interface CachedRevision {
  commit: string;
  /** Branches and tags that point at this commit. */
  refs: string[];
  dir: string;
  files: CachedFile[];
  /** Bytes of the distinct blobs this snapshot uses. */
  size: number;
}

export interface CachedRepo {
  id: string;
  folder: string;
  revisions: CachedRevision[];
  /** Bytes of every blob of the repo, partial downloads included. */
  size: number;
  /** Bytes in blobs/*.incomplete: downloads that `ovis pull` resumes. */
  partialBytes: number;
}

/** Every model repository in the cache, with its snapshots. Unreadable entries are skipped. */
export function scanCache(cacheDir: string): CachedRepo[] {
  let names: string[];
  try {
    names = readdirSync(cacheDir);
  } catch {
    return [];
  }
  const repos: CachedRepo[] = [];
  for (const name of names.sort()) {
    const id = repoIdOfFolder(name);
    if (id) repos.push(scanRepo(cacheDir, id));
  }
  return repos;
}

export function scanRepo(cacheDir: string, id: string): CachedRepo {
  const folder = repoFolder(cacheDir, id);
  const refsByCommit = new Map<string, string[]>();
  for (const ref of listFilesUnder(join(folder, 'refs'))) {
    try {
      const commit = readFileSync(join(folder, 'refs', ...ref.split('/')), 'utf8').trim();
      refsByCommit.set(commit, [...(refsByCommit.get(commit) ?? []), ref]);
    } catch {
      // an unreadable ref names nothing
    }
  }
  const revisions: CachedRevision[] = [];
  for (const commit of safeReaddir(join(folder, 'snapshots')).sort()) {
    const dir = join(folder, 'snapshots', commit);
    const files: CachedFile[] = [];
    for (const path of listFilesUnder(dir)) {
      const full = join(dir, ...path.split('/'));
      try {
        const blob = lstatSync(full).isSymbolicLink() ? resolve(dirname(full), readlinkSync(full)) : full;
        files.push({ path, blob, size: statSync(full).size });
      } catch {
        // a dangling link: its blob was removed; the snapshot is then incomplete
      }
    }
    const blobs = new Map(files.map((f) => [f.blob, f.size]));
    revisions.push({ commit, refs: refsByCommit.get(commit) ?? [], dir, files, size: sum(blobs.values()) });
  }
  let size = 0;
  let partialBytes = 0;
  for (const b of safeReaddir(join(folder, 'blobs'))) {
    const bytes = fileSize(join(folder, 'blobs', b));
    size += bytes;
    if (b.endsWith('.incomplete')) partialBytes += bytes;
  }
  // Snapshots that hold copies rather than links (some Windows and older layouts) count too.
  for (const r of revisions) for (const f of r.files) if (!f.blob.startsWith(join(folder, 'blobs') + sep)) size += f.size;
  return { id, folder, revisions, size, partialBytes };
}

/** Removes a whole repository from the cache, or one revision of it: its snapshot, the refs that
 * point at it, and the blobs no other snapshot uses. Returns the bytes freed. */
export function removeFromCache(cacheDir: string, id: string, commit?: string): number {
  const repo = scanRepo(cacheDir, id);
  if (!commit || repo.revisions.every((r) => r.commit === commit)) {
    rmSync(repo.folder, { recursive: true, force: true });
    return repo.size;
  }
  const gone = repo.revisions.find((r) => r.commit === commit);
  if (!gone) return 0;
  const kept = new Set(repo.revisions.filter((r) => r.commit !== commit).flatMap((r) => r.files.map((f) => f.blob)));
  let freed = 0;
  for (const f of gone.files) {
    if (kept.has(f.blob) || !existsSync(f.blob)) continue;
    freed += fileSize(f.blob);
    rmSync(f.blob, { force: true });
    kept.add(f.blob);
  }
  rmSync(gone.dir, { recursive: true, force: true });
  for (const ref of gone.refs) rmSync(join(repo.folder, 'refs', ...ref.split('/')), { force: true });
  return freed;
}

function safeReaddir(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

function fileSize(path: string): number {
  try {
    return statSync(path).size;
  } catch {
    return 0;
  }
}

/** Paths (with '/') of the files and links under `dir`, recursively. */
function listFilesUnder(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const name of safeReaddir(dir).sort()) {
    const full = join(dir, name);
    let st;
    try {
      st = lstatSync(full);
    } catch {
      continue;
    }
    if (st.isDirectory()) out.push(...listFilesUnder(full, `${prefix}${name}/`));
    else out.push(`${prefix}${name}`);
  }
  return out;
}

const sum = (xs: Iterable<number>) => {
  let s = 0;
  for (const x of xs) s += x;
  return s;
};

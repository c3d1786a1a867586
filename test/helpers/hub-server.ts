// A small Hugging Face Hub on loopback for tests: it serves model repos made from local directories
// to the real clients (@huggingface/hub in the CLI, Python's huggingface_hub for cache interop), so
// `ovis pull` and models by name are tested without the internet. It answers the requests those
// clients make (read from their sources):
//   GET  /api/models/ORG/NAME[/revision/REV]         model info, `sha` = the commit (modelInfo, repo_info)
//   GET  /api/models/ORG/NAME/tree/REV[/PATH]        the file list (listFiles, list_repo_tree)
//   GET|HEAD /ORG/NAME/resolve/REV/PATH              the bytes, with the hub's ETag / X-Repo-Commit /
//                                                    X-Linked-* headers and single Range requests
// No xet: no X-Xet-Hash header, no xet content type, so both clients download over plain HTTP.
// Faults (throttle, corrupt, dropAfter) let tests interrupt and damage downloads on purpose.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { join, resolve } from 'node:path';

export interface HubRepo {
  id: string; // 'AIDC-AI/Ovis2.5-2B'
  dir: string; // directory whose files form the commit (recursive; relative paths with '/')
  files?: (relPath: string) => boolean; // which files of dir belong to the repo (default: all)
  refs?: string[]; // branch/tag names pointing at this commit (default ['main'])
}
/** One request as received: `path` is the raw (still URL-encoded) pathname, `status` the answer's. */
export interface HubRequest { method: string; path: string; range?: string; authorization?: string; status: number }
export interface HubServer {
  url: string; // 'http://127.0.0.1:PORT' (use as HF_ENDPOINT)
  requests: HubRequest[];
  commitOf(id: string, ref?: string): string;
  faults: {
    /** bytes per second for GET bodies of files whose path matches (throttle), e.g. to interrupt a pull midway */
    throttle?: { path: string | RegExp; bytesPerSecond: number };
    /** serve altered content (one byte flipped in the middle) for matching paths, with the ORIGINAL size and ETag */
    corrupt?: string | RegExp;
    /** close the connection after sending this many body bytes of matching files (a dropped download) */
    dropAfter?: { path: string | RegExp; bytes: number };
  };
  close(): Promise<void>;
}

interface RepoFile { path: string; size: number; oid: string /* git blob id */; sha256: string; lfs: boolean; content: Buffer }
interface Commit { sha: string; files: Map<string, RepoFile> }
interface Repo { commits: Map<string, Commit>; refs: Map<string, string> }

const LFS_OVER = 10 * 1024 * 1024; // as a .gitattributes would: *.safetensors and anything this big
const LAST_MODIFIED = '2025-08-15T00:00:00.000Z';

const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const lfsPointer = (f: RepoFile) => `version https://git-lfs.github.com/spec/v1\noid sha256:${f.sha256}\nsize ${f.size}\n`;

/** File contents and hashes, shared by the servers of one test process (the fixture is hashed once).
 * The content is kept: what is served always matches the hashes, even if a test changes the file. */
const fileCache = new Map<string, RepoFile>();

function readRepoFile(abs: string, rel: string): RepoFile {
  const st = statSync(abs);
  const key = `${abs}\0${st.size}\0${st.mtimeMs}`;
  let f = fileCache.get(key);
  if (!f) {
    const content = readFileSync(abs);
    const oid = gitOid(content);
    const sha256 = createHash('sha256').update(content).digest('hex');
    f = { path: rel, size: content.length, oid, sha256, lfs: false, content };
    fileCache.set(key, f);
  }
  if (!(rel.endsWith('.safetensors') || f.size > LFS_OVER)) return { ...f, path: rel };
  // In git an LFS file is its pointer: the tree's oid is the pointer's, the content has the sha256.
  return { ...f, path: rel, lfs: true, oid: gitOid(Buffer.from(lfsPointer(f))) };
}

function listDir(dir: string, prefix = ''): string[] {
  return readdirSync(join(dir, prefix), { withFileTypes: true }).flatMap((e) => {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    return statSync(join(dir, rel)).isDirectory() ? listDir(dir, rel) : [rel];
  });
}

function makeCommit(r: HubRepo): Commit {
  const dir = resolve(r.dir);
  const paths = listDir(dir).filter((p) => r.files?.(p) ?? true).sort();
  const files = new Map(paths.map((p) => [p, readRepoFile(join(dir, p), p)]));
  // Deterministic: the same files give the same commit, any other content or name another one.
  const h = createHash('sha1');
  for (const f of files.values()) h.update(`${f.path}\0${f.oid}\n`);
  return { sha: h.digest('hex'), files };
}

const matches = (pattern: string | RegExp | undefined, path: string) =>
  pattern !== undefined && (typeof pattern === 'string' ? path === pattern : pattern.test(path));

type Reply = ReturnType<typeof replier>;
/** Status, headers and JSON bodies of one response, recording the status. */
function replier(res: ServerResponse, record: HubRequest) {
  const head = (status: number, headers: Record<string, string>) => {
    record.status = status;
    res.writeHead(status, headers);
  };
  const json = (status: number, body: unknown, headers: Record<string, string> = {}) => {
    const text = JSON.stringify(body);
    head(status, { 'Content-Type': 'application/json; charset=utf-8', 'Content-Length': String(Buffer.byteLength(text)), ...headers });
    res.end(text);
  };
  // The hub's error headers: huggingface_hub turns X-Error-Code into its RepositoryNotFoundError,
  // RevisionNotFoundError, EntryNotFoundError; @huggingface/hub reports the status and `error`.
  const fail = (status: number, code: string | undefined, error: string, headers: Record<string, string> = {}) =>
    json(status, { error }, { ...(code ? { 'X-Error-Code': code } : {}), 'X-Error-Message': error, ...headers });
  return { head, json, fail };
}

export async function startHubServer(opts: { repos: HubRepo[]; token?: string }): Promise<HubServer> {
  const repos = new Map<string, Repo>();
  for (const r of opts.repos) {
    const repo = repos.get(r.id) ?? { commits: new Map(), refs: new Map() };
    repos.set(r.id, repo);
    const commit = makeCommit(r);
    repo.commits.set(commit.sha, commit);
    for (const ref of r.refs ?? ['main']) {
      const other = repo.refs.get(ref);
      if (other && other !== commit.sha) throw new Error(`hub-server: ${r.id}: ref ${ref} given to two different commits`);
      repo.refs.set(ref, commit.sha);
    }
  }

  const requests: HubRequest[] = [];
  const faults: HubServer['faults'] = {};
  const sockets = new Set<Socket>();
  const timers = new Set<NodeJS.Timeout>();

  const resolveRev = (repo: Repo, rev: string): Commit | undefined => {
    const sha = repo.refs.get(rev === 'HEAD' ? 'main' : rev) ?? rev;
    return repo.commits.get(sha);
  };

  const server = createServer((req, res) => {
    const record: HubRequest = { method: req.method ?? '', path: (req.url ?? '').split('?')[0], status: 0 };
    if (req.headers.range) record.range = req.headers.range;
    if (req.headers.authorization) record.authorization = req.headers.authorization;
    requests.push(record);
    const reply = replier(res, record);
    try {
      route(req, res, reply);
    } catch (e) {
      if (res.headersSent) res.destroy();
      else reply.fail(500, undefined, `hub-server: ${(e as Error).message}`);
    }
  });

  function route(req: IncomingMessage, res: ServerResponse, { head, json, fail }: Reply) {
    if (opts.token !== undefined && req.headers.authorization !== `Bearer ${opts.token}`) {
      // As the hub answers for a private repo: no token reads as "no such repo" (huggingface_hub:
      // RepositoryNotFoundError, which says to log in); a wrong token as invalid credentials.
      if (!req.headers.authorization) return fail(401, 'RepoNotFound', 'Invalid username or password.');
      return fail(401, undefined, 'Invalid credentials in Authorization header');
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') return fail(405, undefined, 'Method not allowed');
    const url = new URL(req.url ?? '/', 'http://hub');
    let segs: string[];
    try {
      segs = url.pathname.split('/').slice(1).map(decodeURIComponent);
    } catch {
      return fail(400, undefined, 'Bad path');
    }
    // /api/models/ORG/NAME[/revision/REV | /tree/REV[/PATH]]  or  /ORG/NAME/resolve/REV/PATH
    const api = segs[0] === 'api' && segs[1] === 'models';
    const [org, name, kind, rev, ...sub] = api ? segs.slice(2) : segs;
    const known = api
      ? (kind === undefined && name !== undefined) || (kind === 'revision' && rev && !sub.length) || (kind === 'tree' && rev)
      : kind === 'resolve' && rev && sub.length;
    if (!known) return fail(404, undefined, 'Not found');
    const id = `${org}/${name}`;
    const repo = repos.get(id);
    if (!repo) return fail(404, 'RepoNotFound', 'Repository not found');
    const commit = resolveRev(repo, rev ?? 'main');
    if (!commit) return fail(404, 'RevisionNotFound', `Invalid rev id: ${rev}`);

    if (kind === 'tree') return json(...tree(commit, sub.join('/'), url.searchParams.get('recursive') === 'true'));
    if (api) {
      return json(200, {
        _id: createHash('sha1').update(id).digest('hex').slice(0, 24),
        id,
        modelId: id,
        author: org,
        sha: commit.sha,
        private: false,
        gated: false,
        disabled: false,
        downloads: 0,
        likes: 0,
        createdAt: LAST_MODIFIED,
        lastModified: LAST_MODIFIED,
        pipeline_tag: 'image-text-to-text',
        tags: [],
        siblings: [...commit.files.keys()].map((rfilename) => ({ rfilename })),
      });
    }

    const path = sub.join('/');
    const file = commit.files.get(path);
    if (!file) return fail(404, 'EntryNotFound', 'Entry not found', { 'X-Repo-Commit': commit.sha });
    const etag = `"${file.lfs ? file.sha256 : file.oid}"`;
    const headers: Record<string, string> = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
      ETag: etag,
      'X-Repo-Commit': commit.sha,
      // On the hub an LFS file redirects to a CDN and these carry the file's identity; here the
      // bytes come straight back, with the same headers (both clients prefer them to ETag).
      ...(file.lfs ? { 'X-Linked-Etag': etag, 'X-Linked-Size': String(file.size) } : {}),
    };
    let start = 0;
    let end = file.size - 1;
    let status = 200;
    const m = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range?.trim() ?? '');
    if (m && (m[1] || m[2])) {
      if (m[1]) {
        start = Number(m[1]);
        if (m[2]) end = Math.min(Number(m[2]), file.size - 1);
      } else start = Math.max(0, file.size - Number(m[2])); // bytes=-N: the last N bytes
      if (start > end) {
        head(416, { ...headers, 'Content-Range': `bytes */${file.size}`, 'Content-Length': '0' });
        return res.end();
      }
      status = 206;
      headers['Content-Range'] = `bytes ${start}-${end}/${file.size}`;
    }
    headers['Content-Length'] = String(end + 1 - start);
    head(status, headers);
    if (req.method === 'HEAD') return res.end();
    let body = file.content.subarray(start, end + 1);
    if (matches(faults.corrupt, path)) {
      const mid = Math.floor(file.size / 2);
      if (mid >= start && mid <= end) {
        body = Buffer.from(body);
        body[mid - start] ^= 0xff;
      }
    }
    sendBody(res, body, path);
  }

  /** The tree listing: files (with git oid, LFS sha256) and directories under `sub`; all levels when recursive. */
  function tree(commit: Commit, sub: string, recursive: boolean): [number, unknown, Record<string, string>?] {
    const prefix = sub ? `${sub.replace(/\/$/, '')}/` : '';
    const under = [...commit.files.values()].filter((f) => f.path.startsWith(prefix));
    if (prefix && !under.length) return [404, { error: 'Entry not found' }, { 'X-Error-Code': 'EntryNotFound', 'X-Error-Message': 'Entry not found' }];
    const dirs = new Map<string, RepoFile[]>();
    const entries: unknown[] = [];
    for (const f of under) {
      const parts = f.path.slice(prefix.length).split('/');
      for (let i = 1; i < parts.length; i++) {
        if (!recursive && i > 1) break;
        const d = prefix + parts.slice(0, i).join('/');
        dirs.set(d, [...(dirs.get(d) ?? []), f]);
      }
      if (!recursive && parts.length > 1) continue;
      entries.push({
        type: 'file',
        oid: f.oid,
        size: f.size,
        path: f.path,
        ...(f.lfs ? { lfs: { oid: f.sha256, size: f.size, pointerSize: lfsPointer(f).length } } : {}),
      });
    }
    for (const [d, fs] of dirs) {
      // A stand-in for git's tree id: changes whenever anything below changes.
      const oid = createHash('sha1').update(fs.map((f) => `${f.path}\0${f.oid}`).join('\n')).digest('hex');
      entries.push({ type: 'directory', oid, size: 0, path: d });
    }
    entries.sort((a, b) => ((a as { path: string }).path < (b as { path: string }).path ? -1 : 1));
    return [200, entries];
  }

  /** Writes a GET body under the faults: paced in small timed chunks (throttle), cut off with the
   * connection closed (dropAfter), or all at once. */
  function sendBody(res: ServerResponse, body: Buffer, path: string) {
    const drop = matches(faults.dropAfter?.path, path) ? Math.min(faults.dropAfter!.bytes, body.length) : undefined;
    const limit = drop ?? body.length;
    const last = (chunk: Buffer) => {
      if (drop !== undefined && drop < body.length) res.write(chunk, () => res.destroy()); // flushed, then cut
      else res.end(chunk);
    };
    const throttle = faults.throttle && matches(faults.throttle.path, path) ? faults.throttle.bytesPerSecond : undefined;
    if (!throttle) return last(body.subarray(0, limit));
    const chunk = Math.max(1, Math.floor(throttle / 20)); // about 20 writes a second
    const t0 = Date.now();
    let sent = 0;
    const step = () => {
      if (res.destroyed) return;
      const n = Math.min(chunk, limit - sent);
      const piece = body.subarray(sent, sent + n);
      sent += n;
      if (sent >= limit) return last(piece);
      res.write(piece);
      const timer = setTimeout(() => {
        timers.delete(timer);
        step();
      }, Math.max(0, t0 + (sent / throttle) * 1000 - Date.now()));
      timers.add(timer);
    };
    step();
  }

  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((ok, err) => {
    server.once('error', err);
    server.listen(0, '127.0.0.1', () => ok());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    faults,
    commitOf(id, ref = 'main') {
      const sha = repos.get(id)?.refs.get(ref);
      if (!sha) throw new Error(`hub-server: no ref ${ref} in ${id}`);
      return sha;
    },
    close() {
      // Open downloads (a throttled one, a client's keep-alive connection) must not hold close() up.
      for (const t of timers) clearTimeout(t);
      timers.clear();
      const closed = new Promise<void>((ok) => server.close(() => ok()));
      for (const s of sockets) s.destroy();
      return closed;
    },
  };
}

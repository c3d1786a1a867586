// The loopback Hub of the tests (helpers/hub-server.ts) is what the real clients expect: the JS
// @huggingface/hub that ovis uses, and Python's huggingface_hub, whose cache ovis must share. If this
// file passes, tests of `ovis pull` and models by name against it mean something.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createHash } from 'node:crypto';
import { appendFileSync, mkdirSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { downloadFile, HubApiError, listFiles, modelInfo } from '@huggingface/hub';
import { fixtureDir } from '../helpers/cli.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';
import { pythonCachedSnapshot, pythonHubMissing, pythonScanCache, pythonSnapshotDownload } from '../helpers/python-hub.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';

const ID = 'AIDC-AI/Ovis2.5-2B';
const NOT_MODEL = ['expected.safetensors', 'cases.json', 'README.md'];
const isModelFile = (p: string) => !NOT_MODEL.includes(p) && !p.startsWith('inputs/');
const modelFiles = readdirSync(fixtureDir, { withFileTypes: true })
  .filter((e) => e.isFile() && isModelFile(e.name))
  .map((e) => e.name)
  .sort();
const bytes = (p: string) => readFileSync(join(fixtureDir, p));
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const gitOid = (b: Buffer) => createHash('sha1').update(`blob ${b.length}\0`).update(b).digest('hex');
const isLfs = (p: string) => p.endsWith('.safetensors') || bytes(p).length > 10 * 1024 * 1024;
const TOKEN = 'hf_test_token_0123456789';

let hub: HubServer;
const cleanups: (() => unknown)[] = [];
test.before(async () => {
  hub = await startHubServer({ repos: [{ id: ID, dir: fixtureDir, files: isModelFile }] });
});
test.after.each(async () => {
  for (const k of Object.keys(hub.faults) as (keyof HubServer['faults'])[]) delete hub.faults[k];
  for (const c of cleanups.splice(0).reverse()) await c();
});
test.after(() => hub.close());

/** Python tests skip visibly without python3 + huggingface_hub (the SKIPPED line npm test repeats at
 * the end, as native/tests/skip does), and fail instead where the tools are required. */
const pyMissing = pythonHubMissing();
function pyTest(name: string, fn: () => Promise<void>) {
  if (!pyMissing) return test(name, fn);
  if (process.env.OVIS_REQUIRE_TEST_TOOLS === '1' || process.env.CI) {
    return test(name, () => {
      throw new Error(`python3 with huggingface_hub is required here: ${pyMissing}`);
    });
  }
  const line = `SKIPPED test/model/hub-server.test.ts: ${name}: ${pyMissing}`;
  process.stdout.write(`${line}\n`);
  if (process.env.OVIS_SKIP_LOG) appendFileSync(process.env.OVIS_SKIP_LOG, `${line}\n`);
  test.skip(name, fn);
}

function temp(prefix: string): string {
  const dir = tempDir(prefix);
  cleanups.push(() => removeTempDir(dir));
  return dir;
}

async function readAll(stream: ReadableStream<Uint8Array>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of stream as unknown as AsyncIterable<Uint8Array>) parts.push(Buffer.from(c));
  return Buffer.concat(parts);
}

test('JS modelInfo: the sha is the commit of main; the siblings are the model files', async () => {
  const info = await modelInfo({ name: ID, hubUrl: hub.url, additionalFields: ['sha', 'filePaths'] });
  assert.match(hub.commitOf(ID), /^[0-9a-f]{40}$/);
  assert.is(info.sha, hub.commitOf(ID));
  assert.is(info.name, ID);
  assert.equal([...info.filePaths].sort(), modelFiles);
  assert.is(hub.requests.at(-1)!.path, `/api/models/${ID}/revision/HEAD`);
});

test('JS listFiles (recursive, at a revision): every file with its size, git oid and LFS sha256', async () => {
  const entries = [];
  for await (const e of listFiles({ repo: ID, hubUrl: hub.url, recursive: true, revision: hub.commitOf(ID) })) entries.push(e);
  assert.equal(entries.map((e) => e.path).sort(), modelFiles);
  for (const e of entries) {
    const b = bytes(e.path);
    assert.is(e.type, 'file');
    assert.is(e.size, b.length, e.path);
    if (isLfs(e.path)) {
      // As on the hub: the git oid is the LFS pointer's, the content's hash is lfs.oid.
      const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(b)}\nsize ${b.length}\n`;
      assert.equal([e.oid, e.lfs], [gitOid(Buffer.from(pointer)), { oid: sha256(b), size: b.length, pointerSize: pointer.length }], e.path);
    } else {
      assert.equal([e.oid, e.lfs], [gitOid(b), undefined], e.path);
    }
  }
  assert.ok(entries.some((e) => e.path === 'tokenizer.json' && e.lfs), 'a file over 10 MB is LFS');
});

test('JS downloadFile: a slice is one Range request with the right bytes', async () => {
  const path = 'tokenizer_config.json';
  const blob = await downloadFile({ repo: ID, path, hubUrl: hub.url });
  assert.ok(blob);
  assert.is(blob!.size, bytes(path).length);
  const from = hub.requests.length;
  const got = await readAll(blob!.slice(1000).stream());
  assert.ok(got.equals(bytes(path).subarray(1000)));
  const sent = hub.requests.slice(from);
  assert.equal(sent.map((r) => [r.method, r.range, r.status]), [['GET', `bytes=1000-${bytes(path).length - 1}`, 206]]);
});

test('several commits: main and v1 resolve separately, and so does a commit sha; unknown revisions are 404', async () => {
  const v1 = temp('ovis-hub-v1-');
  writeFileSync(join(v1, 'config.json'), '{"v": 1}\n');
  mkdirSync(join(v1, 'sub'));
  writeFileSync(join(v1, 'sub', 'a.safetensors'), 'abc');
  const two = await startHubServer({ repos: [{ id: ID, dir: fixtureDir, files: isModelFile }, { id: ID, dir: v1, refs: ['v1'] }] });
  cleanups.push(() => two.close());
  const [main, tag] = [two.commitOf(ID), two.commitOf(ID, 'v1')];
  assert.is(main, hub.commitOf(ID), 'the same files make the same commit');
  assert.is.not(tag, main);
  assert.is((await modelInfo({ name: ID, hubUrl: two.url, revision: 'v1', additionalFields: ['sha'] })).sha, tag);
  assert.is((await modelInfo({ name: ID, hubUrl: two.url, revision: tag, additionalFields: ['sha'] })).sha, tag);
  const files = [];
  for await (const e of listFiles({ repo: ID, hubUrl: two.url, recursive: true, revision: 'v1' })) files.push(`${e.type} ${e.path}`);
  assert.equal(files, ['file config.json', 'directory sub', 'file sub/a.safetensors']);
  const blob = await downloadFile({ repo: ID, path: 'config.json', revision: tag, hubUrl: two.url });
  assert.is(await blob!.text(), '{"v": 1}\n');
  assert.is(await (await downloadFile({ repo: ID, path: 'config.json', hubUrl: two.url }))!.text(), bytes('config.json').toString());
  const res = await fetch(`${two.url}/${ID}/resolve/v1/config.json`, { method: 'HEAD' });
  assert.is(res.headers.get('x-repo-commit'), tag);
  try {
    await modelInfo({ name: ID, hubUrl: two.url, revision: 'v2' });
    assert.unreachable('an unknown revision is an error');
  } catch (e) {
    assert.instance(e, HubApiError);
    assert.is((e as HubApiError).statusCode, 404);
  }
  assert.is(two.requests.at(-1)!.status, 404);
});

test('errors: an unknown repo is a 404 for JS; a missing file is null (EntryNotFound)', async () => {
  try {
    await modelInfo({ name: 'AIDC-AI/No-Such-Model', hubUrl: hub.url });
    assert.unreachable('an unknown repo is an error');
  } catch (e) {
    assert.instance(e, HubApiError);
    assert.is((e as HubApiError).statusCode, 404);
    assert.match((e as Error).message, /Repository not found/);
  }
  assert.is(await downloadFile({ repo: ID, path: 'nope.bin', hubUrl: hub.url }), null);
  const res = await fetch(`${hub.url}/${ID}/resolve/main/config.json`, { headers: { Range: `bytes=${10 ** 6}-` } });
  assert.is(res.status, 416);
});

test('faults: corrupt serves other bytes of the same size and ETag', async () => {
  const url = `${hub.url}/${ID}/resolve/main/config.json`;
  const good = await fetch(url);
  const goodBody = Buffer.from(await good.arrayBuffer());
  hub.faults.corrupt = 'config.json';
  const bad = await fetch(url);
  const badBody = Buffer.from(await bad.arrayBuffer());
  assert.is(bad.headers.get('etag'), good.headers.get('etag'));
  assert.is(badBody.length, goodBody.length);
  assert.is.not(sha256(badBody), sha256(goodBody));
  assert.is([...badBody].filter((b, i) => b !== goodBody[i]).length, 1);
});

test('faults: dropAfter cuts a download short', async () => {
  hub.faults.dropAfter = { path: 'model.safetensors', bytes: 100_000 };
  const res = await fetch(`${hub.url}/${ID}/resolve/main/model.safetensors`);
  assert.is(res.headers.get('content-length'), String(bytes('model.safetensors').length));
  let got = 0;
  try {
    for await (const c of res.body as unknown as AsyncIterable<Uint8Array>) got += c.length;
    assert.unreachable('the body ends early with an error');
  } catch (e) {
    assert.not.instance(e, assert.Assertion);
  }
  assert.is(got, 100_000);
});

test('faults: throttle paces the body (200 kB at 400 kB/s)', async () => {
  hub.faults.throttle = { path: /^tokenizer\.json$/, bytesPerSecond: 400_000 };
  const t0 = Date.now();
  const res = await fetch(`${hub.url}/${ID}/resolve/main/tokenizer.json`, { headers: { Range: 'bytes=0-199999' } });
  const body = Buffer.from(await res.arrayBuffer());
  const seconds = (Date.now() - t0) / 1000;
  assert.ok(body.equals(bytes('tokenizer.json').subarray(0, 200_000)));
  assert.ok(seconds >= 0.35, `took ${seconds} s`);
});

test('close() ends a download in progress at once', async () => {
  const slow = await startHubServer({ repos: [{ id: ID, dir: fixtureDir, files: isModelFile }] });
  slow.faults.throttle = { path: 'model.safetensors', bytesPerSecond: 50_000 };
  const res = await fetch(`${slow.url}/${ID}/resolve/main/model.safetensors`);
  const reader = res.body!.getReader();
  assert.ok((await reader.read()).value!.length > 0);
  const t0 = Date.now();
  await slow.close();
  assert.ok(Date.now() - t0 < 1000, `close took ${Date.now() - t0} ms`);
  try {
    while (!(await reader.read()).done);
    assert.unreachable('the body breaks off');
  } catch (e) {
    assert.not.instance(e, assert.Assertion);
  }
});

test('token: refused without it (401), served with it (JS)', async () => {
  const locked = await startHubServer({ repos: [{ id: ID, dir: fixtureDir, files: isModelFile }], token: TOKEN });
  cleanups.push(() => locked.close());
  for (const accessToken of [undefined, 'hf_wrong']) {
    try {
      await modelInfo({ name: ID, hubUrl: locked.url, accessToken });
      assert.unreachable('refused');
    } catch (e) {
      assert.instance(e, HubApiError);
      assert.is((e as HubApiError).statusCode, 401);
    }
  }
  const info = await modelInfo({ name: ID, hubUrl: locked.url, accessToken: TOKEN, additionalFields: ['sha'] });
  assert.is(info.sha, locked.commitOf(ID));
  const blob = await downloadFile({ repo: ID, path: 'config.json', hubUrl: locked.url, accessToken: TOKEN });
  assert.ok(Buffer.from(await blob!.arrayBuffer()).equals(bytes('config.json')));
  assert.equal(locked.requests.map((r) => [r.authorization, r.status]), [
    [undefined, 401],
    ['Bearer hf_wrong', 401],
    [`Bearer ${TOKEN}`, 200],
    [`Bearer ${TOKEN}`, 206],
    [`Bearer ${TOKEN}`, 200],
  ]);
});

pyTest('Python snapshot_download: the fixture byte for byte, in the standard cache layout; scan_cache_dir and offline reads agree', async () => {
  const cache = temp('ovis-hub-pycache-');
  const sha = hub.commitOf(ID);
  const first = hub.requests.length;
  const snapshot = await pythonSnapshotDownload({ endpoint: hub.url, repo: ID, cacheDir: cache });
  const repoDir = join(cache, 'models--AIDC-AI--Ovis2.5-2B');
  assert.is(snapshot, join(repoDir, 'snapshots', sha));
  assert.is(readFileSync(join(repoDir, 'refs', 'main'), 'utf8'), sha);
  assert.equal(readdirSync(snapshot).sort(), modelFiles);
  const blobNames = modelFiles.map((p) => (isLfs(p) ? sha256(bytes(p)) : gitOid(bytes(p))));
  assert.equal(readdirSync(join(repoDir, 'blobs')).sort(), [...blobNames].sort());
  for (const [i, p] of modelFiles.entries()) {
    assert.is(readlinkSync(join(snapshot, p)), `../../blobs/${blobNames[i]}`, p);
    assert.ok(readFileSync(join(snapshot, p)).equals(bytes(p)), p);
  }
  const made = hub.requests.slice(first);
  assert.ok(made.every((r) => !r.range && r.status === 200), 'whole files, no ranges, no errors');
  assert.equal(made.filter((r) => r.method === 'HEAD').length, modelFiles.length, 'a HEAD per file');

  const scan = await pythonScanCache(cache);
  assert.equal(scan.warnings, []);
  assert.is(scan.repos.length, 1);
  const [repo] = scan.repos;
  assert.equal([repo.repo_id, repo.repo_type, repo.nb_files], [ID, 'model', modelFiles.length]);
  assert.equal(repo.revisions.map((r: { commit_hash: string; refs: string[] }) => [r.commit_hash, r.refs]), [[sha, ['main']]]);
  assert.equal(repo.revisions[0].files.map((f: { file_name: string }) => f.file_name), modelFiles);

  const before = hub.requests.length;
  assert.is(await pythonCachedSnapshot({ repo: ID, cacheDir: cache }), snapshot);
  assert.is(await pythonCachedSnapshot({ repo: ID, revision: sha, cacheDir: cache }), snapshot);
  assert.is(hub.requests.length, before, 'offline: no requests');
  try {
    await pythonCachedSnapshot({ repo: ID, revision: 'v1', cacheDir: cache });
    assert.unreachable('not cached');
  } catch (e) {
    assert.match((e as Error).message, /LocalEntryNotFoundError/);
  }
});

pyTest('Python: a tag revision, allow_patterns, and the token', async () => {
  const v1 = temp('ovis-hub-v1-');
  writeFileSync(join(v1, 'config.json'), '{"v": 1}\n');
  writeFileSync(join(v1, 'model.safetensors'), 'weights');
  const locked = await startHubServer({
    repos: [{ id: ID, dir: fixtureDir, files: isModelFile }, { id: ID, dir: v1, refs: ['v1'] }],
    token: TOKEN,
  });
  cleanups.push(() => locked.close());
  const cache = temp('ovis-hub-pycache-');
  try {
    await pythonSnapshotDownload({ endpoint: locked.url, repo: ID, revision: 'v1', cacheDir: cache });
    assert.unreachable('refused without the token');
  } catch (e) {
    assert.match((e as Error).message, /RepositoryNotFoundError/);
  }
  const snapshot = await pythonSnapshotDownload({
    endpoint: locked.url,
    repo: ID,
    revision: 'v1',
    cacheDir: cache,
    allowPatterns: ['*.json'],
    token: TOKEN,
  });
  const tag = locked.commitOf(ID, 'v1');
  assert.is(snapshot, join(cache, 'models--AIDC-AI--Ovis2.5-2B', 'snapshots', tag));
  assert.is(readFileSync(join(cache, 'models--AIDC-AI--Ovis2.5-2B', 'refs', 'v1'), 'utf8'), tag);
  assert.equal(readdirSync(snapshot), ['config.json']);
  assert.ok(locked.requests.filter((r) => r.status < 400).every((r) => r.authorization === `Bearer ${TOKEN}`));
});

test.run();

// `ovis pull`, then `ovis ask` with no --model, against a hub of the tests' own on loopback
// (HF_ENDPOINT) that serves the fixture as AIDC-AI/Ovis2.5-2B: the cache layout huggingface_hub
// writes, nothing fetched twice, a download killed halfway and resumed from where it stopped, a
// corrupted or cut download detected, offline mode, tokens, revisions, list and rm.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fixtureDir, jsonLines, root, runOvis } from '../helpers/cli.js';
import { fixtureRepo, gitOid, greedyArgs, modelFiles, REPO, repoDir, snapshotLinks, weightsSha256 } from '../helpers/fixture-repo.js';
import { startHubServer, type HubServer } from '../helpers/hub-server.js';
import { modelWith } from '../helpers/model-copy.js';
import { comparableIds } from '../helpers/reference.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';

/** An empty cache and the environment that points ovis at it and at `hub`, online. */
function setup(hub: HubServer, extra: Record<string, string | undefined> = {}) {
  const home = tempDir('ovis-pull-');
  const cache = join(home, 'hub');
  const env = { HF_HOME: home, HF_HUB_CACHE: cache, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: undefined, ...extra };
  return { home, cache, env };
}

const answerIds = (stdout: string) => jsonLines(stdout).filter((e) => e.type === 'token').map((t) => t.id);
const resolveGets = (hub: HubServer) => hub.requests.filter((r) => r.method === 'GET' && r.path.includes('/resolve/'));

test('pull the default model, then ask with no --model: the reference answer from the cache, laid out as huggingface_hub does', async () => {
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const { home, cache, env } = setup(hub);
  try {
    const pulled = await runOvis(['pull', '--json'], { env });
    assert.is(pulled.code, 0, pulled.stderr);
    const commit = hub.commitOf(REPO);
    const out = JSON.parse(pulled.stdout);
    assert.equal({ model: out.model, revision: out.revision, commit: out.commit, files: out.files }, { model: REPO, revision: 'main', commit, files: modelFiles.length });
    assert.is(out.path, join(repoDir(cache), 'snapshots', commit));
    assert.match(pulled.stderr, new RegExp(`${REPO} is ready`));

    // refs/main names the commit; every file is a relative link to blobs/<sha256 or git sha1>
    assert.is(readFileSync(join(repoDir(cache), 'refs', 'main'), 'utf8'), commit);
    const links = snapshotLinks(cache, commit);
    assert.equal(Object.keys(links), modelFiles);
    assert.is(links['model.safetensors'], `../../blobs/${weightsSha256}`);
    assert.is(links['config.json'], `../../blobs/${gitOid('config.json')}`);
    for (const f of modelFiles) assert.ok(readFileSync(join(out.path, f)).equals(readFileSync(join(fixtureDir, f))), `${f} is byte-identical`);
    assert.equal(readdirSync(join(repoDir(cache), 'blobs')).filter((b) => b.endsWith('.incomplete')), []);

    const asked = await runOvis(['ask', ...greedyArgs], { env });
    assert.is(asked.code, 0, asked.stderr);
    assert.equal(answerIds(asked.stdout), comparableIds('text'));

    // Pulling again fetches no file: only the commit and its file list are asked for.
    const before = resolveGets(hub).length;
    const again = await runOvis(['pull'], { env });
    assert.is(again.code, 0, again.stderr);
    assert.is(resolveGets(hub).length, before, 'no file fetched again');
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});


/** A loopback port nothing listens on (a server's, closed again). */
function closedPort(): Promise<number> {
  return new Promise((resolve) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const port = (srv.address() as AddressInfo).port;
      srv.close(() => resolve(port));
    });
  });
}

/** Starts `ovis pull` and resolves once the weights' partial download holds at least `bytes`. */
function pullUntil(env: Record<string, string | undefined>, cache: string, bytes: number) {
  const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'pull'], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, OVIS_MODEL: undefined, HF_TOKEN: undefined, ...env }, stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
  const partial = join(repoDir(cache), 'blobs', `${weightsSha256}.incomplete`);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((r) => child.on('close', (code, signal) => r({ code, signal, stderr })));
  const reached = (async () => {
    const end = Date.now() + 30000;
    while (Date.now() < end) {
      if (existsSync(partial) && statSync(partial).size >= bytes) return statSync(partial).size;
      await new Promise((r) => setTimeout(r, 20));
    }
    throw new Error(`the partial download never reached ${bytes} bytes; stderr: ${stderr}`);
  })();
  return { child, reached, exited, partial };
}

test('a download stopped by Ctrl-C and then killed outright resumes where it stopped, and the weights are intact', async () => {
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const { home, cache, env } = setup(hub);
  try {
    // 10.4 MB of weights at 2 MB/s: about five seconds, long enough to stop it partway
    hub.faults.throttle = { path: /model\.safetensors$/, bytesPerSecond: 2_000_000 };
    const first = pullUntil(env, cache, 1_000_000);
    await first.reached;
    first.child.kill('SIGINT');
    const stopped = await first.exited;
    assert.is(stopped.code, 130, stopped.stderr);
    assert.match(stopped.stderr, /download stopped with .* kept: run `ovis pull AIDC-AI\/Ovis2\.5-2B` to resume it/);
    const kept = statSync(first.partial).size;
    assert.ok(kept >= 1_000_000, `the partial download is kept (${kept} bytes)`);
    assert.not.ok(existsSync(join(repoDir(cache), 'refs', 'main')), 'no ref to an incomplete snapshot');

    // without a model, ask says it is only partly downloaded
    const partly = await runOvis(['ask', 'Hi'], { env });
    assert.is(partly.code, 4, partly.stderr);
    assert.match(partly.stderr, /only partly downloaded.*ovis pull AIDC-AI\/Ovis2\.5-2B/);

    const second = pullUntil(env, cache, kept + 1_000_000);
    await second.reached;
    second.child.kill('SIGKILL');
    await second.exited;
    const kept2 = statSync(second.partial).size;
    const ranges = hub.requests.filter((r) => r.path.endsWith('/model.safetensors') && r.range && r.range !== 'bytes=0-0').map((r) => r.range);
    assert.ok(ranges.includes(`bytes=${kept}-${10406608 - 1}`) || ranges.includes(`bytes=${kept}-`), `the second run resumed at ${kept}: ${ranges.join(', ')}`);

    hub.faults.throttle = undefined;
    const last = await runOvis(['pull'], { env });
    assert.is(last.code, 0, last.stderr);
    const ranges2 = hub.requests.filter((r) => r.path.endsWith('/model.safetensors') && r.range && r.range !== 'bytes=0-0').map((r) => r.range);
    assert.ok(ranges2.some((r) => r!.startsWith(`bytes=${kept2}-`)), `the third run resumed at ${kept2} after the kill: ${ranges2.join(', ')}`);
    const blob = join(repoDir(cache), 'blobs', weightsSha256);
    assert.ok(readFileSync(blob).equals(readFileSync(join(fixtureDir, 'model.safetensors'))), 'the resumed weights are byte-identical');
    assert.not.ok(existsSync(first.partial));
    const asked = await runOvis(['ask', ...greedyArgs], { env });
    assert.is(asked.code, 0, asked.stderr);
    assert.equal(answerIds(asked.stdout), comparableIds('text'));
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test('a corrupted download is detected and removed; a cut one is kept and resumed', async () => {
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const { home, cache, env } = setup(hub);
  try {
    hub.faults.corrupt = /model\.safetensors$/;
    const bad = await runOvis(['pull'], { env });
    assert.is(bad.code, 6, bad.stderr);
    assert.match(bad.stderr, /model\.safetensors arrived corrupted \(sha256 [0-9a-f]{64}, expected [0-9a-f]{64}\)/);
    const blobs = readdirSync(join(repoDir(cache), 'blobs'));
    assert.not.ok(blobs.some((b) => b.startsWith(weightsSha256)), `no trace of the bad weights: ${blobs.join(', ')}`);
    assert.not.ok(existsSync(join(repoDir(cache), 'refs', 'main')));

    hub.faults.corrupt = undefined;
    hub.faults.dropAfter = { path: /model\.safetensors$/, bytes: 3_000_000 };
    const cut = await runOvis(['pull'], { env });
    assert.is(cut.code, 6, cut.stderr);
    assert.match(cut.stderr, /model\.safetensors (broke off|ended early)/);
    assert.match(cut.stderr, /run the same command again to resume it/);
    const partial = join(repoDir(cache), 'blobs', `${weightsSha256}.incomplete`);
    // what arrived before the cut is kept (bytes still in flight when the connection broke are not)
    const kept = statSync(partial).size;
    assert.ok(kept > 2_000_000 && kept <= 3_000_000, `kept ${kept} of the 3,000,000 bytes sent`);

    hub.faults.dropAfter = undefined;
    const good = await runOvis(['pull'], { env });
    assert.is(good.code, 0, good.stderr);
    assert.ok(hub.requests.some((r) => r.path.endsWith('/model.safetensors') && r.range?.startsWith(`bytes=${kept}-`)), `resumed at ${kept}`);
    assert.ok(readFileSync(join(repoDir(cache), 'blobs', weightsSha256)).equals(readFileSync(join(fixtureDir, 'model.safetensors'))));
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test('offline (HF_HUB_OFFLINE=1): pull refuses, ask uses the cache, and the hub hears nothing', async () => {
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const { home, env } = setup(hub);
  try {
    const refused = await runOvis(['pull'], { env: { ...env, HF_HUB_OFFLINE: '1' } });
    assert.is(refused.code, 4, refused.stderr);
    assert.match(refused.stderr, /HF_HUB_OFFLINE is set/);
    const missing = await runOvis(['ask', 'Hi'], { env: { ...env, HF_HUB_OFFLINE: '1' } });
    assert.is(missing.code, 4);
    assert.match(missing.stderr, /not downloaded .*HF_HUB_OFFLINE is set/);
    assert.is(hub.requests.length, 0);

    assert.is((await runOvis(['pull'], { env })).code, 0);
    const heard = hub.requests.length;
    const asked = await runOvis(['ask', ...greedyArgs], { env: { ...env, HF_HUB_OFFLINE: '1' } });
    assert.is(asked.code, 0, asked.stderr);
    assert.equal(answerIds(asked.stdout), comparableIds('text'));
    const listed = await runOvis(['list', '--json'], { env: { ...env, HF_HUB_OFFLINE: '1' } });
    assert.is(listed.code, 0, listed.stderr);
    assert.is(hub.requests.length, heard, 'ask and list never touch the network');
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test('list --json, a second revision by tag, rm of one revision, rm of the model', async () => {
  const v1 = modelWith({ 'generation_config.json': JSON.stringify({ ...JSON.parse(readFileSync(join(fixtureDir, 'generation_config.json'), 'utf8')), temperature: 0.5 }) });
  const hub = await startHubServer({ repos: [fixtureRepo(), fixtureRepo({ dir: v1, refs: ['v1'] })] });
  const { home, cache, env } = setup(hub);
  try {
    assert.is((await runOvis(['pull'], { env })).code, 0);
    const tagged = await runOvis(['pull', `${REPO}@v1`], { env });
    assert.is(tagged.code, 0, tagged.stderr);
    const main = hub.commitOf(REPO);
    const tag = hub.commitOf(REPO, 'v1');
    assert.is.not(main, tag);
    assert.is(readFileSync(join(repoDir(cache), 'refs', 'v1'), 'utf8'), tag);
    // the weights are shared: one blob, two snapshots
    assert.is(readdirSync(join(repoDir(cache), 'blobs')).filter((b) => b === weightsSha256).length, 1);

    const listed = JSON.parse((await runOvis(['list', '--json'], { env })).stdout);
    assert.is(listed.cache, cache);
    const rows = listed.models.map((m: any) => ({ model: m.model, refs: m.refs, commit: m.commit, status: m.status, default: m.default, source: m.source }));
    assert.equal(rows.sort((a: any, b: any) => a.refs[0].localeCompare(b.refs[0])), [
      { model: REPO, refs: ['main'], commit: main, status: 'ready', default: true, source: 'hf-cache' },
      { model: REPO, refs: ['v1'], commit: tag, status: 'ready', default: false, source: 'hf-cache' },
    ]);
    const text = await runOvis(['list'], { env });
    assert.match(text.stdout, /^MODEL\s+REFS\s+COMMIT\s+SIZE\s+STATUS\s+PATH$/m);
    assert.match(text.stdout, new RegExp(`^AIDC-AI/Ovis2\\.5-2B \\(default\\)\\s+main\\s+${main.slice(0, 10)}\\s+21\\.8 MB\\s+ready`, 'm'));

    const rmTag = await runOvis(['rm', `${REPO}@v1`], { env });
    assert.is(rmTag.code, 0, rmTag.stderr);
    assert.match(rmTag.stderr, /removed AIDC-AI\/Ovis2\.5-2B@v1 \(commit [0-9a-f]{10}\): [\d.]+ (B|kB) freed/);
    assert.ok(existsSync(join(repoDir(cache), 'blobs', weightsSha256)), 'the weights main still uses stay');
    assert.not.ok(existsSync(join(repoDir(cache), 'refs', 'v1')));
    assert.is((await runOvis(['ask', ...greedyArgs], { env: { ...env, HF_HUB_OFFLINE: '1' } })).code, 0);

    const unknown = await runOvis(['rm', REPO, 'AIDC-AI/Ovis2.5-9B'], { env });
    assert.is(unknown.code, 4);
    assert.match(unknown.stderr, /AIDC-AI\/Ovis2\.5-9B is not downloaded/);
    assert.ok(existsSync(repoDir(cache)), 'a bad name among several removes nothing');

    const rmAll = await runOvis(['rm', '--json', REPO], { env });
    assert.is(rmAll.code, 0, rmAll.stderr);
    assert.equal(Object.keys(JSON.parse(rmAll.stdout)), ['model', 'path', 'freed_bytes']);
    assert.not.ok(existsSync(repoDir(cache)));
    const empty = JSON.parse((await runOvis(['list', '--json'], { env })).stdout);
    assert.equal(empty.models, []);
  } finally {
    await hub.close();
    removeTempDir(home);
    removeTempDir(v1);
  }
});

test('hub errors: an unknown model, an unknown revision, a token refused or missing, a repository that is not Ovis2.5', async () => {
  const qwen = modelWith({ 'config.json': JSON.stringify({ model_type: 'qwen2_vl', architectures: ['Qwen2VLForConditionalGeneration'] }) });
  const hub = await startHubServer({ repos: [fixtureRepo(), { id: 'Qwen/Qwen2-VL-2B', dir: qwen }], token: 'hf_testtoken' });
  const { home, env } = setup(hub);
  try {
    const noToken = await runOvis(['pull'], { env });
    assert.is(noToken.code, 4, noToken.stderr);
    assert.match(noToken.stderr, /HF_TOKEN/);
    const wrong = await runOvis(['pull'], { env: { ...env, HF_TOKEN: 'hf_wrong' } });
    assert.is(wrong.code, 4, wrong.stderr);
    assert.match(wrong.stderr, /refused/);
    const withToken = { ...env, HF_TOKEN: 'hf_testtoken' };
    const unknown = await runOvis(['pull', 'AIDC-AI/Ovis2.5-3B'], { env: withToken });
    assert.is(unknown.code, 4, unknown.stderr);
    assert.match(unknown.stderr, /has no model AIDC-AI\/Ovis2\.5-3B \(HTTP 404\)/);
    const badRev = await runOvis(['pull', `${REPO}@nope`], { env: withToken });
    assert.is(badRev.code, 4, badRev.stderr);
    assert.match(badRev.stderr, /has no revision "nope"/);
    const before = hub.requests.length;
    const notOvis = await runOvis(['pull', 'Qwen/Qwen2-VL-2B'], { env: withToken });
    assert.is(notOvis.code, 4, notOvis.stderr);
    assert.match(notOvis.stderr, /not an Ovis2\.5 model \(model_type "qwen2_vl"\)/);
    assert.not.ok(hub.requests.slice(before).some((r) => r.path.endsWith('.safetensors')), 'refused before any weights');
    // the token file of `huggingface-cli login` works as HF_TOKEN does
    writeFileSync(join(home, 'token'), 'hf_testtoken\n');
    const viaFile = await runOvis(['pull'], { env });
    assert.is(viaFile.code, 0, viaFile.stderr);
    const closed = await closedPort();
    const noHub = await runOvis(['pull'], { env: { ...env, HF_ENDPOINT: `http://127.0.0.1:${closed}` } });
    assert.is(noHub.code, 6, noHub.stderr);
    assert.match(noHub.stderr, new RegExp(`cannot reach http://127\\.0\\.0\\.1:${closed} \\(ECONNREFUSED\\)`));
    const badName = await runOvis(['pull', 'not a model'], { env });
    assert.is(badName.code, 2);
  } finally {
    await hub.close();
    removeTempDir(home);
    removeTempDir(qwen);
  }
});

test('two pulls at once: the second waits for the first, and both end with the model', async () => {
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const { home, cache, env } = setup(hub);
  try {
    hub.faults.throttle = { path: /model\.safetensors$/, bytesPerSecond: 4_000_000 };
    const first = pullUntil(env, cache, 500_000);
    await first.reached;
    const second = await runOvis(['pull'], { env });
    const done = await first.exited;
    assert.is(done.code, 0, done.stderr);
    // stderr is a pipe: progress as plain lines, every tenth of the way, with rate and time left
    assert.match(done.stderr, /^pulling AIDC-AI\/Ovis2\.5-2B: \d+%  [\d.]+ MB\/21\.8 MB  [\d.]+ MB\/s  ETA \d+ s$/m);
    assert.not.match(done.stderr, /\r|\x1b\[/, 'no terminal escapes');
    assert.is(second.code, 0, second.stderr);
    assert.match(second.stderr, /another ovis process \(pid \d+\) is pulling AIDC-AI\/Ovis2\.5-2B: waiting for it to finish/);
    assert.is(hub.requests.filter((r) => r.method === 'GET' && r.path.endsWith('/model.safetensors') && r.range !== 'bytes=0-0').length, 1, 'the weights fetched once');
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test('pull --all fetches every file, nested ones linked as huggingface_hub links them; without it, only what ovis reads', async () => {
  const hub = await startHubServer({ repos: [{ id: REPO, dir: fixtureDir }] });
  const { home, cache, env } = setup(hub);
  try {
    const some = await runOvis(['pull', '--json'], { env });
    assert.is(some.code, 0, some.stderr);
    const commit = hub.commitOf(REPO);
    const snap = join(repoDir(cache), 'snapshots', commit);
    assert.equal(readdirSync(snap).sort(), modelFiles, 'no test data, no second safetensors file without an index naming it');
    const all = await runOvis(['pull', '--all', '--json'], { env });
    assert.is(all.code, 0, all.stderr);
    assert.ok(readdirSync(snap).includes('expected.safetensors') && readdirSync(snap).includes('README.md'));
    assert.is(readlinkSync(join(snap, 'inputs', 'photo.jpg')), `../../../blobs/${gitOid('inputs/photo.jpg')}`);
    assert.ok(readFileSync(join(snap, 'inputs', 'photo.jpg')).equals(readFileSync(join(fixtureDir, 'inputs', 'photo.jpg'))));
    assert.is(JSON.parse(all.stdout).downloaded_bytes, JSON.parse(all.stdout).size_bytes - JSON.parse(some.stdout).size_bytes, 'only the new files fetched');
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test.run();

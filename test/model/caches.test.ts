// Models other tools downloaded, used as they are: a Hugging Face cache written by Python's
// huggingface_hub (and ours read back by it), a ModelScope cache; and the first use of a model that
// is not downloaded, on a terminal (asked, then fetched) and elsewhere (the `ovis pull` to run).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, readdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { fixtureRepo, greedyArgs, modelFiles, REPO, repoDir } from '../helpers/fixture-repo.js';
import { startHubServer } from '../helpers/hub-server.js';
import { pythonCachedSnapshot, pythonHubMissing, pythonScanCache, pythonSnapshotDownload } from '../helpers/python-hub.js';
import { comparableIds } from '../helpers/reference.js';
import { skipTest } from '../helpers/skip.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { ovisCommand, Term, tmuxAvailable } from '../helpers/tmux.js';

const answerIds = (stdout: string) => jsonLines(stdout).filter((e) => e.type === 'token').map((t) => t.id);
const pythonMissing = pythonHubMissing();

test('a cache written by Python huggingface_hub is used without pulling; ours reads back in Python', async () => {
  if (pythonMissing) return skipTest('Python huggingface_hub cache interoperability', pythonMissing);
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const home = tempDir('ovis-pycache-');
  const pyCache = join(home, 'python');
  const ourCache = join(home, 'ours');
  try {
    const snapshot = await pythonSnapshotDownload({ endpoint: hub.url, repo: REPO, cacheDir: pyCache });
    assert.is(snapshot, join(repoDir(pyCache), 'snapshots', hub.commitOf(REPO)));
    const heard = hub.requests.length;
    const env = { HF_HUB_CACHE: pyCache, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: undefined };
    const asked = await runOvis(['ask', ...greedyArgs], { env });
    assert.is(asked.code, 0, asked.stderr);
    assert.equal(answerIds(asked.stdout), comparableIds('text'));
    const listed = JSON.parse((await runOvis(['list', '--json'], { env })).stdout);
    assert.equal(listed.models.map((m: any) => [m.model, m.refs, m.status, m.path]), [[REPO, ['main'], 'ready', snapshot]]);
    assert.is(hub.requests.length, heard, 'nothing downloaded again');

    // our pull into a cache of its own, then Python's scan and offline lookup of it
    const pulled = await runOvis(['pull'], { env: { HF_HUB_CACHE: ourCache, HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: undefined } });
    assert.is(pulled.code, 0, pulled.stderr);
    const scan = await pythonScanCache(ourCache);
    assert.equal(scan.warnings, []);
    assert.is(scan.repos.length, 1);
    assert.is(scan.repos[0].repo_id, REPO);
    assert.equal(scan.repos[0].revisions.map((r: any) => [r.commit_hash, r.refs]), [[hub.commitOf(REPO), ['main']]]);
    assert.equal(scan.repos[0].revisions[0].files.map((f: any) => f.file_name).sort(), modelFiles);
    assert.is(await pythonCachedSnapshot({ repo: REPO, cacheDir: ourCache }), join(repoDir(ourCache), 'snapshots', hub.commitOf(REPO)));
  } finally {
    await hub.close();
    removeTempDir(home);
  }
});

test('a model in the ModelScope cache (models/ORG/NAME with dots written ___) is found by name, offline', async () => {
  const home = tempDir('ovis-modelscope-');
  try {
    const dir = join(home, 'models', 'AIDC-AI', 'Ovis2___5-2B');
    mkdirSync(dir, { recursive: true });
    for (const f of modelFiles) symlinkSync(join(fixtureDir, f), join(dir, f));
    const env = { MODELSCOPE_CACHE: home };
    const asked = await runOvis(['ask', ...greedyArgs], { env });
    assert.is(asked.code, 0, asked.stderr);
    assert.equal(answerIds(asked.stdout), comparableIds('text'));
    const listed = JSON.parse((await runOvis(['list', '--json'], { env })).stdout);
    assert.equal(listed.models.map((m: any) => [m.model, m.source, m.path, m.status, m.default]), [[REPO, 'modelscope', dir, 'ready', true]]);
    const removed = await runOvis(['rm', REPO], { env });
    assert.is(removed.code, 0, removed.stderr);
    assert.equal(readdirSync(join(home, 'models', 'AIDC-AI')), []);
  } finally {
    removeTempDir(home);
  }
});

const terminal = tmuxAvailable();
if (!terminal && (process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS)) throw new Error('tmux is needed for the terminal tests (apt-get install tmux)');

test('first use on a terminal: asked with the size, Enter downloads it, then the answer', async () => {
  if (!terminal) return skipTest('first use on a terminal', 'tmux is not installed (apt-get install tmux)');
  const hub = await startHubServer({ repos: [fixtureRepo()] });
  const home = tempDir('ovis-firstuse-');
  const env = { HF_HOME: home, HF_HUB_CACHE: join(home, 'hub'), HF_ENDPOINT: hub.url, HF_HUB_OFFLINE: '0', NO_COLOR: '1', MODELSCOPE_CACHE: join(home, 'ms'), OVIS_MODEL: '' };
  const declined = new Term(ovisCommand(['ask', 'Hi']), { env, width: 250 });
  const t = new Term(ovisCommand(['ask', '--temperature', '0', '-n', '4', 'Hi']), { env, width: 250 });
  try {
    await declined.waitFor(/AIDC-AI\/Ovis2\.5-2B is not downloaded yet: download it \(21\.8 MB\) from http:\/\/127\.0\.0\.1:\d+ into .*\? \[Y\/n\]/);
    declined.type('n');
    declined.keys('Enter');
    assert.is(await declined.exitCode(), 4);
    assert.match(declined.screen(), /not downloaded: run `ovis pull AIDC-AI\/Ovis2\.5-2B` when you want it/);

    await t.waitFor(/download it \(21\.8 MB\)/);
    t.keys('Enter');
    assert.is(await t.exitCode(60000), 0, t.screen());
    const s = t.screen();
    assert.match(s, /pulling AIDC-AI\/Ovis2\.5-2B \(commit [0-9a-f]{10}\) from/);
    assert.match(s, /AIDC-AI\/Ovis2\.5-2B is ready: 21\.8 MB downloaded in /);
  } finally {
    declined.kill();
    t.kill();
    await hub.close();
    removeTempDir(home);
  }
});

test.run();

// `ovis ask --endpoint` against the real `ovis serve` on loopback, on the fixture model: both routes
// run the same engine, prompt builder and sampler, so the remote answer must be the local answer,
// byte for byte (greedy), for text, an image, thinking, --each and a continued conversation.
// Remote --json carries no token ids (OpenAI's stream has none), so the texts are compared.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { startServe, type Served } from '../helpers/serve.js';
import { tempDir } from '../helpers/temp-dirs.js';

const photo = join(fixtureDir, 'inputs', 'photo.jpg');
const greedy = ['--temperature', '0', '-n', '8'];
let served: Served;

test.before(async () => {
  served = await startServe(['--api-key', 'sesame']);
});
test.after(async () => {
  assert.is(await served.stop(), 0, 'the server drains and exits 0');
});

const local = (args: string[]) => runOvis(['ask', '--model', fixtureDir, ...args]);
const remote = (args: string[], env: Record<string, string | undefined> = { OVIS_API_KEY: 'sesame' }) =>
  runOvis(['ask', '--endpoint', `${served.url}/v1`, ...args], { env });

async function same(args: string[]): Promise<string> {
  const [l, r] = await Promise.all([local(args), remote(args)]);
  assert.is(l.code, 0, l.stderr);
  assert.is(r.code, 0, r.stderr);
  assert.ok(l.stdout.trim().length > 0, 'the local answer is not empty');
  assert.is(r.stdout, l.stdout, `remote and local answers differ for ${args.join(' ')}`);
  return r.stderr;
}

test('text: the remote answer equals the local one', async () => {
  await same([...greedy, 'Describe the Yellow Mountain in one sentence.']);
});

test('an image goes as a data URL and gives the local answer', async () => {
  await same([...greedy, '--min-pixels', String(448 * 448), '--max-pixels', String(448 * 448), '-a', photo, 'What is in this picture?']);
});

test('thinking: the same thinking on stderr and the same answer on stdout', async () => {
  const args = [...greedy, '-n', '12', '--think', 'Why is the sky blue?'];
  const [l, r] = await Promise.all([local(args), remote(args)]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, l.stdout);
  // Thinking goes to stderr on both routes; compare its text without the remote's phase lines.
  const think = (s: string) => s.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((x) => !/^(ovis|waiting)/i.test(x)).join('\n').trim();
  assert.ok(think(l.stderr).length > 0, 'local thinking shown');
  assert.ok(think(r.stderr).includes(think(l.stderr)) || think(l.stderr).includes(think(r.stderr)), `thinking differs:\nlocal: ${l.stderr}\nremote: ${r.stderr}`);
});

test('--each and --json: one line per file, the same texts as locally', async () => {
  const args = [...greedy, '--min-pixels', String(448 * 448), '--max-pixels', String(448 * 448), '--each', 'Describe it.', '--format', 'json', photo, join(fixtureDir, 'inputs', 'small.png')];
  const [l, r] = await Promise.all([local(args), remote(args)]);
  assert.is(r.code, 0, r.stderr);
  const texts = (s: string) => jsonLines(s).map((x: any) => [x.file, x.answer, x.thinking, x.finish_reason]);
  assert.equal(texts(r.stdout), texts(l.stdout));
});

test('a conversation continued with --continue: the second turn equals the local one', async () => {
  const dir = tempDir('ovis-against-serve-');
  const lf = join(dir, 'local.json');
  const rf = join(dir, 'remote.json');
  writeFileSync(lf, '[]');
  writeFileSync(rf, '[]');
  for (const q of ['Name a mountain.', 'And a river?']) {
    const l = await local([...greedy, '--continue', lf, q]);
    const r = await remote([...greedy, '--continue', rf, q]);
    assert.is(l.code, 0, l.stderr);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, l.stdout);
  }
  assert.equal(JSON.parse(readFileSync(rf, 'utf8')), JSON.parse(readFileSync(lf, 'utf8')));
});

test('a wrong key is refused by the server: exit 7 with a message naming the endpoint', async () => {
  const r = await remote([...greedy, 'Hello'], { OVIS_API_KEY: 'wrong' });
  assert.is(r.code, 7, r.stderr);
  assert.match(r.stderr, served.url);
  assert.is(r.stdout, '');
});

test.run();

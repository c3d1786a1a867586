// `ovis ask --each --endpoint`: one request per file, in order, the same output lines as a local
// batch; a bad file fails alone; a server that refuses the key stops the batch. And Ctrl-C during a
// remote answer: the HTTP request is dropped, the answer so far kept, exit 130.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, root, runOvis } from '../helpers/cli.js';
import { OpenAITestServer } from '../helpers/openai-server.js';
import { tempDir } from '../helpers/temp-dirs.js';

const photo = join(fixtureDir, 'inputs', 'photo.jpg');
const small = join(fixtureDir, 'inputs', 'small.png');

let server: OpenAITestServer;
test.after.each(async () => {
  await server?.close();
});

test('--each: a request per file with its image, JSON lines in order, a broken file fails alone (exit 3)', async () => {
  let n = 0;
  server = await OpenAITestServer.start({ reply: () => ({ deltas: [{ reasoning_content: `look ${++n}` }, { content: `answer ${n}` }], usage: { prompt_tokens: 40, completion_tokens: 2, cached_tokens: 10 } }) });
  const broken = join(tempDir('ovis-remote-each-'), 'broken.png');
  writeFileSync(broken, 'not an image');
  const r = await runOvis(['ask', '--endpoint', server.url, '--think', '--system', 'Be brief.', '--each', 'Describe this image.', photo, broken, small]);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /1 of 3 files failed/);
  const lines = jsonLines(r.stdout);
  assert.equal(lines.map((l) => l.file), [photo, broken, small]);
  assert.equal([lines[0].answer, lines[0].thinking, lines[0].finish_reason], ['answer 1', 'look 1', 'stop']);
  assert.equal(lines[0].usage, { prompt_tokens: 40, cached_tokens: 10, completion_tokens: 2 });
  assert.is(lines[1].error.code, 'input');
  assert.equal([lines[2].answer, lines[2].thinking], ['answer 2', 'look 2']);
  const sent = server.completions.map((c) => c.body.messages);
  assert.is(sent.length, 2, 'the broken file is never sent');
  assert.equal(sent[0], [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${readFileSync(photo).toString('base64')}` } }, { type: 'text', text: 'Describe this image.' }] },
  ]);
  assert.is(sent[1][1].content[0].image_url.url, `data:image/png;base64,${readFileSync(small).toString('base64')}`);
});

test('--each --format text: the same headers and answers as locally', async () => {
  server = await OpenAITestServer.start();
  const r = await runOvis(['ask', '--endpoint', server.url, '--format', 'text', '--each', 'Describe.', photo, small]);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, `== ${photo} ==\nHello there.\n== ${small} ==\nHello there.\n`);
});

test('--each: a refused key stops the batch at the first file with exit 7', async () => {
  server = await OpenAITestServer.start({ apiKey: 'right' });
  // The listing is refused before any file: exit 7 at once.
  let r = await runOvis(['ask', '--endpoint', server.url, '--api-key', 'wrong', '--each', 'Describe.', photo, small]);
  assert.is(r.code, 7, r.stderr);
  assert.is(server.completions.length, 0);
  // A key that the listing takes but the completions refuse (a proxy in front, say) stops there too.
  await server.close();
  server = await OpenAITestServer.start({ reply: (_b, rec) => (rec.headers.authorization ? { status: 403, message: 'forbidden' } : { deltas: [] }) });
  r = await runOvis(['ask', '--endpoint', server.url, '--api-key', 'k', '--each', 'Describe.', photo, small]);
  assert.is(r.code, 7, r.stderr);
  assert.is(server.completions.length, 1, 'the second file is not tried');
  assert.is(jsonLines(r.stdout)[0].error.code, 'auth');
});

test('Ctrl-C while a remote answer streams: the request is dropped, the answer so far kept, exit 130', async () => {
  server = await OpenAITestServer.start({ reply: () => ({ stall: [{ content: 'The beginning' }] }) });
  const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'ask', '--endpoint', server.url, '--json', 'Count forever'], {
    stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, FORCE_COLOR: undefined, NO_COLOR: '1', OVIS_API_KEY: undefined },
  });
  let stdout = '';
  let stderr = '';
  let interrupted = false;
  child.stdout.on('data', (c: Buffer) => {
    stdout += c;
    // One Ctrl-C: a second one, sent when the `done` line arrives, would meet the default handler
    // during the exit and kill the process by signal (a race on a loaded machine).
    if (!interrupted && stdout.includes('The beginning')) {
      interrupted = true;
      child.kill('SIGINT');
    }
  });
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  child.stdin.end();
  const code = await new Promise<number | null>((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('close', (c) => (clearTimeout(timer), resolve(c)));
  });
  assert.is(code, 130, stderr);
  const events = jsonLines(stdout);
  assert.equal(events[0], { type: 'token', id: null, text: 'The beginning', channel: 'answer', logprob: -0.25 });
  assert.is(events.at(-1).type, 'done');
  assert.is(events.at(-1).finish_reason, 'cancelled');
  assert.match(stderr, /interrupted: generation cancelled/);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(server.completions[0].aborted, 'the server saw the request go away');
});

test.run();

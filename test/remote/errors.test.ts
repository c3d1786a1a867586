// What `ovis ask --endpoint` says and how it exits when the server cannot be reached or refuses:
// each failure its message naming the endpoint and what to do, and its exit code (src/errors.ts).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { createServer } from 'node:net';
import { jsonLines, runOvis } from '../helpers/cli.js';
import { OpenAITestServer } from '../helpers/openai-server.js';

let server: OpenAITestServer | undefined;
test.after.each(async () => {
  await server?.close();
  server = undefined;
});
const ask = (endpoint: string, args: string[] = [], env: Record<string, string | undefined> = {}) =>
  runOvis(['ask', '--endpoint', endpoint, ...args, 'Hi'], { env: { OVIS_API_KEY: undefined, ...env } });

/** A loopback port nothing listens on (bound, then closed). */
async function closedPort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/** A server whose chat completions all answer `status` with `message`. */
const failing = async (status: number, message: string) => (server = await OpenAITestServer.start({ reply: () => ({ status, message }) }));

test('connection refused: exit 6, the endpoint named, is the server running', async () => {
  const port = await closedPort();
  const r = await ask(`http://127.0.0.1:${port}/v1`);
  assert.is(r.code, 6, r.stderr);
  assert.is(r.stderr, `ovis: cannot connect to http://127.0.0.1:${port}/v1: connection refused (is the server running, and listening on 127.0.0.1:${port}?)\n`);
  assert.is(r.stdout, '');
});

test('a host name that does not resolve: exit 6, check the name', async () => {
  const r = await ask('http://ovis-test.invalid:8000/v1');
  assert.is(r.code, 6, r.stderr);
  assert.match(r.stderr, /cannot connect to http:\/\/ovis-test\.invalid:8000\/v1: the host name ovis-test\.invalid does not resolve/);
});

test('no answer in time: exit 6 after OVIS_ENDPOINT_TIMEOUT, the client gives up', async () => {
  server = await OpenAITestServer.start({ reply: () => ({ hang: true }) });
  const t0 = performance.now();
  const r = await ask(server.url, [], { OVIS_ENDPOINT_TIMEOUT: '1' });
  assert.is(r.code, 6, r.stderr);
  assert.match(r.stderr, new RegExp(`${server.url} did not answer within 1 s: .*OVIS_ENDPOINT_TIMEOUT=SECONDS`));
  assert.ok(performance.now() - t0 < 20000);
  assert.ok(server.completions[0].aborted, 'the request was dropped');
});

test('a stream that goes quiet mid-answer: exit 6 after OVIS_ENDPOINT_TIMEOUT, the answer so far kept', async () => {
  server = await OpenAITestServer.start({ reply: () => ({ stall: [{ content: 'Once upon' }] }) });
  const r = await ask(server.url, [], { OVIS_ENDPOINT_TIMEOUT: '1.5' });
  assert.is(r.code, 6, r.stderr);
  assert.is(r.stdout, 'Once upon');
  assert.match(r.stderr, new RegExp(`${server.url} sent nothing for 1.5 s in the middle of the answer`));
  assert.ok(server.completions[0].aborted, 'the request was dropped');
});

test('a refused key: exit 7; a missing key is asked for', async () => {
  server = await OpenAITestServer.start({ apiKey: 'right' });
  let r = await ask(server.url, ['--api-key', 'wrong']);
  assert.is(r.code, 7, r.stderr);
  assert.is(r.stderr, `ovis: ${server.url} refused the API key: check --api-key or OVIS_API_KEY (401: Unauthorized)\n`);
  r = await ask(server.url);
  assert.is(r.code, 7, r.stderr);
  assert.match(r.stderr, /needs an API key: give it with --api-key KEY or OVIS_API_KEY/);
});

test('a model the server does not have (404 on the request): exit 4', async () => {
  server = await OpenAITestServer.start();
  // Not in GET /v1/models: refused before anything is sent.
  let r = await ask(server.url, ['--remote-model', 'nope']);
  assert.is(r.code, 4, r.stderr);
  // A server whose listing is missing (404) still gets the request; its 404 is reported as such.
  await server.close();
  server = await OpenAITestServer.start({ models: [{ id: 'served' }] });
  r = await ask(`${server.url.replace(/\/v1$/, '')}/wrong/v1`, ['--remote-model', 'served']);
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /answered 404 \(Not Found: \/wrong\/v1\/chat\/completions\): the model "served" may not be served there .*or the URL is not the API's base, which usually ends in \/v1/);
});

test('busy (429): exit 8, try again later', async () => {
  await failing(429, 'the queue is full');
  const r = await ask(server!.url);
  assert.is(r.code, 8, r.stderr);
  assert.is(r.stderr, `ovis: ${server!.url} is busy (429: the queue is full): try again later, or send fewer requests at once\n`);
  assert.is(server!.completions.length, 1, 'not retried behind the user\'s back');
});

test("the server fails (5xx): exit 5, the server's log says why", async () => {
  await failing(503, 'the engine is restarting');
  const r = await ask(server!.url);
  assert.is(r.code, 5, r.stderr);
  assert.is(r.stderr, `ovis: ${server!.url} failed (503: the engine is restarting): the server's log says why; try again\n`);
});

test('a refused request (400, 413): exit 3 with the server\'s reason', async () => {
  await failing(413, 'the image is too large');
  const r = await ask(server!.url);
  assert.is(r.code, 3, r.stderr);
  assert.is(r.stderr, `ovis: ${server!.url} refused the request (413: the image is too large)\n`);
});

test('the connection cut mid-answer: the answer so far printed, exit 6', async () => {
  server = await OpenAITestServer.start({ reply: () => ({ cut: [{ content: 'Half an' }] }) });
  const r = await ask(server.url);
  assert.is(r.code, 6, r.stderr);
  assert.is(r.stdout, 'Half an');
  assert.match(r.stderr, /stopped sending before the answer ended \(no finish_reason\)|closed the connection/);
});

test('an error event inside the stream (generation failed on the server): exit 5 with its message', async () => {
  server = await OpenAITestServer.start({ reply: () => ({ failAfter: [{ content: 'Half' }], message: 'CUDA out of memory' }) });
  const r = await ask(server.url);
  assert.is(r.code, 5, r.stderr);
  assert.match(r.stderr, /CUDA out of memory/);
});

test('--json: the error is a JSON line with its code', async () => {
  await failing(429, 'the queue is full');
  const r = await ask(server!.url, ['--json']);
  assert.is(r.code, 8);
  assert.equal(jsonLines(r.stdout), [{ type: 'error', code: 'busy', message: `${server!.url} is busy (429: the queue is full): try again later, or send fewer requests at once` }]);
});

test('a bad --endpoint is a usage error; a bare host gets /v1', async () => {
  let r = await ask('ftp://host/v1');
  assert.is(r.code, 2);
  assert.match(r.stderr, /--endpoint must be an http:\/\/ or https:\/\/ URL, got "ftp:\/\/host\/v1"/);
  r = await ask('not a url');
  assert.is(r.code, 2);
  server = await OpenAITestServer.start();
  r = await ask(server.url.replace(/\/v1$/, ''));
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions.length, 1);
});

test.run();

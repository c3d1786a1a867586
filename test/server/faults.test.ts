// `ovis serve` under faults, with the openai SDK as the client against the real server: API keys,
// a client that disconnects mid-stream, a full queue, the engine killed mid-request, and SIGTERM
// draining what is in flight. One server for the file: --max-batch 2 --max-queue 1 --api-key.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import OpenAI from 'openai';
import { caseOf } from '../helpers/reference.js';
import { getJson, metric, startServe, until, type Served } from '../helpers/serve.js';

const KEY = 'test-key-0123456789';
let server: Served;
let client: OpenAI;

test.before(async () => {
  server = await startServe(['--max-batch', '2', '--max-queue', '1', '--api-key', KEY]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: KEY, maxRetries: 0 });
});
test.after(async () => {
  if (server.proc.exitCode === null) await server.stop();
});

const messages = caseOf('text').messages;
/** Greedy on the fixture repeats one token: it runs until max_tokens (tens of seconds here). */
const long = { model: 'tiny-ovis2.5', temperature: 0, max_tokens: 20_000, messages };
const health = async () => (await getJson(`${server.url}/health`)).body;

async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  throw new Error('the request succeeded; an error was expected');
}

/** A streaming request that has produced its first chunk; `rest` consumes the others. */
async function started(extra: object = {}) {
  const stream: any = await client.chat.completions.create({ ...long, stream: true, ...extra });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  return { stream, rest: async () => { for (let r = await it.next(); !r.done; r = await it.next()); } };
}

test('the API key: missing or wrong is 401 with an OpenAI error; /health needs none; the right key works', async () => {
  for (const apiKey of ['wrong-key', '']) {
    const other = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: apiKey || 'x', maxRetries: 0, defaultHeaders: apiKey ? {} : { authorization: null as any } });
    const e = await apiError(other.chat.completions.create({ ...long, max_tokens: 1 }));
    assert.is(e.status, 401);
    assert.is(e.code, 'invalid_api_key');
    assert.match(e.message, apiKey ? /not this server's/ : /needs an API key/);
  }
  assert.is((await getJson(`${server.url}/health`)).status, 200);
  const ok = await client.chat.completions.create({ ...long, max_tokens: 2 });
  assert.is(ok.usage!.completion_tokens, 2);
});

test('a client that disconnects mid-stream frees its slot at once (cancelled in the engine)', async () => {
  const { stream } = await started();
  assert.is((await health()).running, 1);
  stream.controller.abort();
  await until('the slot to be free', async () => (await health()).running === 0, 5000);
  await until('the cancellation to be counted', async () => (await metric(server.url, 'ovis_cancelled_requests_total')) === 1, 5000);
  assert.is(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="499"}'), 1);
});

test('a full queue is 429 (queue_full); the server serves again once slots free up', async () => {
  const a = await started();
  const b = await started();
  const waiting = client.chat.completions.create({ ...long, max_tokens: 3 });
  await until('one request queued', async () => (await health()).queued === 1);
  const e = await apiError(client.chat.completions.create({ ...long, max_tokens: 1 }));
  assert.is(e.status, 429);
  assert.is(e.code, 'queue_full');
  assert.is(await metric(server.url, 'ovis_queue_depth'), 1);
  a.stream.controller.abort();
  const queued = await waiting;
  assert.is(queued.usage!.completion_tokens, 3, 'the queued request ran when a slot freed');
  b.stream.controller.abort();
  await until('all slots free', async () => (await health()).running === 0);
  assert.is(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="429"}'), 1);
});

test('the engine killed mid-request: 503 for what was in flight, then the server answers again', async () => {
  const before = await health();
  const whole = apiError(client.chat.completions.create(long));
  const { rest } = await started();
  await until('both requests running', async () => (await health()).running === 2);
  process.kill(before.engine_pid, 'SIGKILL');
  const e = await whole;
  assert.is(e.status, 503);
  assert.is(e.code, 'engine_unavailable');
  // The stream had sent its first chunk: the error comes as an event, which the SDK throws.
  const streamed = await apiError(rest());
  assert.match(streamed.message, /engine/);
  await until('the engine to serve again', async () => (await health()).status === 'ok', 60_000);
  const after = await health();
  assert.is.not(after.engine_pid, before.engine_pid);
  const ok = await client.chat.completions.create({ ...long, max_tokens: 2 });
  assert.is(ok.usage!.completion_tokens, 2);
  assert.is(await metric(server.url, 'ovis_engine_restarts_total'), 1);
  assert.ok(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="503"}') >= 2);
});

test('SIGTERM drains: the stream in flight completes, then the server exits 0', async () => {
  const stream: any = await client.chat.completions.create({ ...long, max_tokens: 200, stream: true, stream_options: { include_usage: true } });
  const it = stream[Symbol.asyncIterator]();
  await it.next();
  const exit = server.stop();
  let usage: any;
  let finish: string | undefined;
  for (let r = await it.next(); !r.done; r = await it.next()) {
    if (r.value.usage) usage = r.value.usage;
    finish = r.value.choices[0]?.finish_reason ?? finish;
  }
  assert.is(finish, 'length');
  assert.is(usage.completion_tokens, 200);
  assert.is(await exit, 0, server.stderr());
  assert.match(server.stderr(), /SIGTERM: finishing 1 request/);
});

test.run();

// `ovis ask --endpoint` against a real HTTP server on loopback that answers as vLLM does
// (test/helpers/openai-server.ts): the exact request sent (messages, data URLs, kwargs, sampling,
// the key) and the output made of the streamed answer, as a local run prints it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { OpenAITestServer, type Reply } from '../helpers/openai-server.js';
import { hasFfmpeg, makeFramesVideo } from '../helpers/vision.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { skipTest } from '../helpers/skip.js';

const photo = join(fixtureDir, 'inputs', 'photo.jpg');
const small = join(fixtureDir, 'inputs', 'small.png');
const dataURL = (path: string, type: string) => `data:${type};base64,${readFileSync(path).toString('base64')}`;

let server: OpenAITestServer;
const serve = async (opts: Parameters<typeof OpenAITestServer.start>[0] = {}) => (server = await OpenAITestServer.start(opts));
test.after.each(async () => {
  await server?.close();
});
const ask = (args: string[], env: Record<string, string | undefined> = {}, input?: string | Buffer) =>
  runOvis(['ask', '--endpoint', server.url, ...args], { env: { OVIS_API_KEY: undefined, ...env }, input });

test('a text question: the request as vLLM takes it, the streamed answer on stdout, nothing else', async () => {
  await serve();
  const r = await ask(['-n', '64', '--temperature', '0.7', '--top-p', '0.8', '--top-k', '5', '--repetition-penalty', '1.1', '--seed', '42', '--system', 'Be brief.', 'Why', 'is the sky blue?']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'Hello there.\n');
  assert.is(r.stderr, '');
  const [listing, sent] = server.requests;
  assert.is(listing.path, '/v1/models', 'the model is looked up first');
  assert.is(sent.path, '/v1/chat/completions');
  assert.is(sent.headers.authorization, undefined, 'no key, no Authorization header');
  assert.equal(sent.body, {
    model: 'AIDC-AI/Ovis2.5-9B',
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: 'Why is the sky blue?' }],
    stream: true, stream_options: { include_usage: true }, max_tokens: 64,
    chat_template_kwargs: { enable_thinking: false },
    temperature: 0.7, top_p: 0.8, top_k: 5, repetition_penalty: 1.1, seed: 42,
  });
});

test('unset sampling flags are left to the server; greedy sends temperature 0 without a repetition penalty', async () => {
  await serve();
  let r = await ask(['Hi']);
  assert.is(r.code, 0, r.stderr);
  const plain = server.completions[0].body;
  for (const k of ['temperature', 'top_p', 'top_k', 'repetition_penalty', 'seed', 'logprobs', 'mm_processor_kwargs', 'thinking_budget']) assert.not.ok(k in plain, `${k} not sent`);
  assert.is(plain.max_tokens, 1024, "ovis's -n default");
  r = await ask(['--temperature', '0', '--top-k', '0', 'Hi']);
  assert.is(r.code, 0, r.stderr);
  const greedy = server.completions[1].body;
  assert.is(greedy.temperature, 0);
  assert.is(greedy.repetition_penalty, 1);
  assert.is(greedy.top_k, -1, "--top-k 0 (off) is vLLM's -1");
});

test('images go as data URLs of the files themselves, with the pixel limits as mm_processor_kwargs', async () => {
  await serve();
  const r = await ask(['--max-pixels', '200000', photo, small, 'Compare', 'them.']);
  assert.is(r.code, 0, r.stderr);
  const body = server.completions[0].body;
  assert.equal(body.messages, [{
    role: 'user',
    content: [
      { type: 'image_url', image_url: { url: dataURL(photo, 'image/jpeg') } },
      { type: 'image_url', image_url: { url: dataURL(small, 'image/png') } },
      { type: 'text', text: 'Compare them.' },
    ],
  }]);
  assert.equal(body.mm_processor_kwargs, { min_pixels: 448 * 448, max_pixels: 200000 });
});

test('an image on stdin is typed by its bytes', async () => {
  await serve();
  const r = await ask(['--attach', '-', 'What is it?'], {}, readFileSync(small));
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions[0].body.messages[0].content[0].image_url.url, dataURL(small, 'image/png'));
});

test('a video goes as a video_url data URL after the local checks', async () => {
  if (!hasFfmpeg) return skipTest('remote video', 'ffmpeg is not installed');
  await serve();
  const video = makeFramesVideo(join(tempDir('ovis-remote-video-'), 'frames.mkv'));
  const r = await ask([video, 'What happens?']);
  assert.is(r.code, 0, r.stderr);
  const part = server.completions[0].body.messages[0].content[0];
  assert.equal(part, { type: 'video_url', video_url: { url: dataURL(video, 'video/x-matroska') } });
});

test('media are checked here first: a missing or broken image is an input error and nothing is sent', async () => {
  await serve();
  let r = await ask(['missing.jpg', 'Describe']);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /missing\.jpg does not exist/);
  const broken = join(tempDir('ovis-remote-broken-'), 'broken.png');
  writeFileSync(broken, 'not an image');
  r = await ask([broken, 'Describe']);
  assert.is(r.code, 3, r.stderr);
  r = await ask(['--max-input-pixels', '100', photo, 'Describe']);
  assert.is(r.code, 3, r.stderr);
  assert.is(server.completions.length, 0);
});

const thinking: Reply = { deltas: [{ reasoning_content: 'The user asks' }, { reasoning_content: ' about colour.' }, { content: '\n\nBlue' }, { content: ' light scatters.' }] };

test('thinking: enable_thinking and thinking_budget sent; reasoning_content shown as thinking on stderr', async () => {
  await serve({ reply: () => thinking });
  const r = await ask(['--think-budget', '100', 'Why is the sky blue?']);
  assert.is(r.code, 0, r.stderr);
  const body = server.completions[0].body;
  assert.equal(body.chat_template_kwargs, { enable_thinking: true });
  assert.is(body.thinking_budget, 100);
  assert.is(r.stdout, 'Blue light scatters.\n');
  assert.is(r.stderr, 'The user asks about colour.\n');
});

test('a server without a reasoning parser: <think>…</think> inside content is thinking too', async () => {
  await serve({ reply: () => ({ deltas: [{ content: '<think>' }, { content: '\nHmm, the' }, { content: ' sky.\n</' }, { content: 'think>\n\nIt is' }, { content: ' Rayleigh scattering.' }] }) });
  const r = await ask(['--think', 'Why?']);
  assert.is(r.code, 0, r.stderr);
  assert.is(r.stdout, 'It is Rayleigh scattering.\n');
  assert.is(r.stderr, 'Hmm, the sky.\n');
});

test('--json: token events (no ids from a server) with logprobs, then done with usage and finish_reason', async () => {
  await serve({ reply: () => ({ ...thinking, finish: 'length', usage: { prompt_tokens: 30, completion_tokens: 4, cached_tokens: 8 } }) });
  const r = await ask(['--json', '--think', '--top-logprobs', '2', 'Why?']);
  assert.is(r.code, 0, r.stderr);
  const body = server.completions[0].body;
  assert.is(body.logprobs, true);
  assert.is(body.top_logprobs, 2);
  const lines = jsonLines(r.stdout);
  const tokens = lines.filter((l) => l.type === 'token');
  assert.equal(tokens.map((t) => [t.id, t.channel, t.text]), [[null, 'thinking', 'The user asks'], [null, 'thinking', ' about colour.'], [null, 'answer', '\n\nBlue'], [null, 'answer', ' light scatters.']]);
  assert.is(tokens[0].logprob, -0.25);
  assert.equal(tokens[0].top_logprobs, [{ id: null, text: 'The user asks', logprob: -0.25 }, { id: null, text: 'alt1', logprob: -1.25 }]);
  const done = lines.at(-1);
  assert.is(done.type, 'done');
  assert.is(done.finish_reason, 'length');
  assert.equal(done.usage, { prompt_tokens: 30, completion_tokens: 4 });
  for (const k of ['vision_ms', 'prefill_ms', 'first_token_ms', 'decode_ms', 'total_ms', 'wall_ms']) assert.type(done.timings[k], 'number', k);
});

test('the key: --api-key, else OVIS_API_KEY, as a Bearer token', async () => {
  await serve({ apiKey: 'sekrit' });
  let r = await ask(['--api-key', 'sekrit', 'Hi']);
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions[0].headers.authorization, 'Bearer sekrit');
  r = await ask(['Hi'], { OVIS_API_KEY: 'sekrit' });
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions[1].headers.authorization, 'Bearer sekrit');
  r = await ask(['Hi'], { OPENAI_API_KEY: 'sekrit' });
  assert.is(r.code, 7, 'OPENAI_API_KEY is not ours to send');
});

test('which model: the only one listed, else --remote-model or a listed --model; several without a choice is a usage error', async () => {
  await serve({ models: [{ id: 'a' }, { id: 'b' }] });
  let r = await ask(['Hi']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /serves 2 models \(a, b\): choose one with --remote-model NAME/);
  r = await ask(['--remote-model', 'b', 'Hi']);
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions.at(-1)!.body.model, 'b');
  r = await ask(['--model', 'a', 'Hi']);
  assert.is(r.code, 0, r.stderr);
  assert.is(server.completions.at(-1)!.body.model, 'a');
  r = await ask(['--remote-model', 'c', 'Hi']);
  assert.is(r.code, 4);
  assert.match(r.stderr, /has no model "c": it serves a, b/);
});

test('--messages and --save work as locally: history with media goes along, the answer is saved', async () => {
  await serve();
  const dir = tempDir('ovis-remote-conv-');
  const conv = join(dir, 'conv.json');
  let r = await ask(['--save', conv, photo, 'Describe']);
  assert.is(r.code, 0, r.stderr);
  r = await ask(['--continue', conv, 'And the colours?']);
  assert.is(r.code, 0, r.stderr);
  const msgs = server.completions[1].body.messages;
  assert.equal(msgs.map((m: any) => m.role), ['user', 'assistant', 'user']);
  assert.is(msgs[0].content[0].image_url.url, dataURL(photo, 'image/jpeg'));
  assert.is(msgs[1].content, 'Hello there.');
  assert.is(JSON.parse(readFileSync(conv, 'utf8')).length, 4);
});

test('--api-key or --remote-model without --endpoint is a usage error', async () => {
  const r = await runOvis(['ask', '--model', fixtureDir, '--api-key', 'k', 'Hi']);
  assert.is(r.code, 2);
  assert.match(r.stderr, /--api-key is for a server: give the server with --endpoint URL/);
});

test.run();

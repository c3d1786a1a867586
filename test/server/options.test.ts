// `ovis serve`'s options, each against a real server on the fixture: a non-loopback --host without
// a key warns; OVIS_API_KEY sets the key; --max-body-bytes and --max-input-pixels refuse with 413;
// --allow-local-files admits file:// media; a video as a data URL gives the reference's ids.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import OpenAI from 'openai';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { caseOf, comparableIds } from '../helpers/reference.js';
import { startServe, type Served } from '../helpers/serve.js';
import { skipTest } from '../helpers/skip.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { hasFfmpeg, input, makeFramesVideo, questionOf } from '../helpers/vision.js';

let open: Served;
let keyed: Served;
/** A loopback web server for --allow-remote-media: /photo.jpg, and /huge that declares 1 GiB. */
let media: Server;
let mediaUrl: string;
const KEY = 'from-the-environment';
const tmp = tempDir('ovis-serve-options-');
const client = (s: Served, apiKey = 'unused') => new OpenAI({ baseURL: `${s.url}/v1`, apiKey, maxRetries: 0 });
const ids = (content: Array<{ token: string }>) => content.map((t) => Number(t.token.replace('token_id:', '')));

test.before(async () => {
  media = createServer((req, res) => {
    if (req.url === '/photo.jpg') return res.end(readFileSync(input('photo.jpg')));
    if (req.url === '/huge') return res.writeHead(200, { 'content-length': String(2 ** 30) }).write(Buffer.alloc(1024));
    res.writeHead(404).end();
  });
  await new Promise<void>((r) => media.listen(0, '127.0.0.1', r));
  mediaUrl = `http://127.0.0.1:${(media.address() as AddressInfo).port}`;
  [open, keyed] = await Promise.all([
    startServe(['--host', '0.0.0.0', '--max-body-bytes', '4000', '--allow-local-files', '--allow-remote-media', '--frames', '4']),
    startServe(['--frames', '4', '--max-input-pixels', '100000'], { env: { OVIS_API_KEY: KEY } }),
  ]);
});
test.after(async () => {
  await Promise.all([open.stop(), keyed.stop()]);
  media.closeAllConnections();
  media.close();
  removeTempDir(tmp);
});

test('a non-loopback --host without an API key prints a warning; a loopback one does not', () => {
  assert.match(open.stderr(), /warning: listening on 0\.0\.0\.0 without an API key/);
  assert.not.match(keyed.stderr(), /warning/);
});

test('a port in use, or a bad --kv-memory, is a usage error (exit 2) that says what to do', async () => {
  const port = new URL(keyed.url).port;
  const busy = await runOvis(['serve', '--model', fixtureDir, '--port', port]);
  assert.is(busy.code, 2, busy.stderr);
  assert.match(busy.stderr, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: the port is in use; choose another --port`));
  const kv = await runOvis(['serve', '--model', fixtureDir, '--kv-memory', '5']);
  assert.is(kv.code, 2);
  assert.match(kv.stderr, /--kv-memory takes a size of at least 1M/);
});

test('OVIS_API_KEY is the key when --api-key is not given', async () => {
  const e = await client(keyed).chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 }).catch((err) => err);
  assert.is(e.status, 401);
  const ok = await client(keyed, KEY).chat.completions.create({ messages: [{ role: 'user', content: 'Hi' }], max_tokens: 1 });
  assert.is(ok.usage!.completion_tokens, 1);
});

test('a body over --max-body-bytes is 413 with an OpenAI-shaped error', async () => {
  const res = await fetch(`${open.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ messages: [{ role: 'user', content: 'x'.repeat(5000) }] }),
  });
  assert.is(res.status, 413);
  const body = await res.json();
  assert.is(body.error.code, 'payload_too_large');
  assert.match(body.error.message, /--max-body-bytes/);
});

test('an image over --max-input-pixels once decoded is 413, and the server goes on', async () => {
  const url = `data:image/jpeg;base64,${readFileSync(input('photo.jpg')).toString('base64')}`;
  const e = await client(keyed, KEY).chat.completions.create({ max_tokens: 1, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }] }] }).catch((err) => err);
  assert.is(e.status, 413);
  assert.match(e.message, /640×480 pixels .* over the limit/);
  const ok = await client(keyed, KEY).chat.completions.create({ max_tokens: 1, messages: [{ role: 'user', content: 'Hi' }] });
  assert.is(ok.usage!.completion_tokens, 1);
});

test('--allow-local-files: a file:// image gives the reference ids of the image case', async () => {
  const c = caseOf('image');
  const r: any = await client(open).chat.completions.create({
    temperature: 0, max_tokens: 8, logprobs: true, return_tokens_as_token_ids: true, chat_template_kwargs: { enable_thinking: false },
    mm_processor_kwargs: { min_pixels: c.min_pixels, max_pixels: c.max_pixels },
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `file://${input('photo.jpg')}` } }, { type: 'text', text: questionOf('image') }] }],
  } as any);
  const want = comparableIds('image');
  assert.equal(ids(r.choices[0].logprobs.content).slice(0, want.length), want);
});

test('--allow-remote-media: an http image gives the reference ids; one declaring 1 GiB is 413; without the flag, 400', async () => {
  const c = caseOf('image');
  const ask = (s: Served, key: string, url: string) => client(s, key).chat.completions.create({
    temperature: 0, max_tokens: 8, logprobs: true, return_tokens_as_token_ids: true, chat_template_kwargs: { enable_thinking: false },
    mm_processor_kwargs: { min_pixels: c.min_pixels, max_pixels: c.max_pixels },
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: questionOf('image') }] }],
  } as any);
  const r: any = await ask(open, 'unused', `${mediaUrl}/photo.jpg`);
  const want = comparableIds('image');
  assert.equal(ids(r.choices[0].logprobs.content).slice(0, want.length), want);
  const huge = await ask(open, 'unused', `${mediaUrl}/huge`).catch((e) => e);
  assert.is(huge.status, 413);
  assert.match(huge.message, /1024\.0 MiB, over this server's limit/);
  const refused = await ask(keyed, KEY, `${mediaUrl}/photo.jpg`).catch((e) => e);
  assert.is(refused.status, 400);
  assert.match(refused.message, /--allow-remote-media/);
});

test('a video as a data URL (video_url) gives the reference ids of the video case', async () => {
  if (!hasFfmpeg) return skipTest('serve video_url', 'ffmpeg is not installed');
  const c = caseOf('video');
  const video = readFileSync(makeFramesVideo(join(tmp, 'frames.mkv')));
  // To the keyed server: the other's 4000-byte body limit is smaller than the video.
  const r: any = await client(keyed, KEY).chat.completions.create({
    temperature: 0, max_tokens: 8, logprobs: true, return_tokens_as_token_ids: true, chat_template_kwargs: { enable_thinking: false },
    mm_processor_kwargs: { min_pixels: c.min_pixels, max_pixels: c.max_pixels },
    messages: [{ role: 'user', content: [{ type: 'video_url', video_url: { url: `data:video/x-matroska;base64,${video.toString('base64')}` } }, { type: 'text', text: questionOf('video') }] }],
  } as any);
  const want = comparableIds('video');
  assert.equal(ids(r.choices[0].logprobs.content).slice(0, want.length), want);
  assert.is(r.usage.prompt_tokens, c.num_ids);
});

test.run();

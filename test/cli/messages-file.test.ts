// `--messages FILE` (OpenAI-style JSON): media parts given as paths relative to the file, file://
// URLs and video parts reach the model exactly as the reference cases; a bad file is an input
// error (exit 3) that names the file and what is wrong with it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fixtureDir, runOvis } from '../helpers/cli.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { expectReference, greedyArgs, input, makeFramesVideo, questionOf } from '../helpers/vision.js';

const tmp = tempDir('ovis-messages-');
test.after(() => removeTempDir(tmp));

let count = 0;
/** Writes `content` (JSON unless a string) to a new file in `dir` and returns its path. */
function messagesFile(content: unknown, dir = tmp): string {
  const file = join(dir, `messages-${++count}.json`);
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
  return file;
}

/** One user turn: a medium part, then the case's question. */
const askAbout = (part: object, name: string) => [{ role: 'user', content: [part, { type: 'text', text: questionOf(name) }] }];

test('an image path relative to the messages file (not to the working directory)', async () => {
  const dir = join(tmp, 'relative');
  mkdirSync(join(dir, 'pics'), { recursive: true });
  copyFileSync(input('photo.jpg'), join(dir, 'pics', 'photo.jpg'));
  const file = messagesFile(askAbout({ type: 'image', path: 'pics/photo.jpg' }, 'image'), dir);
  await expectReference('image', [...greedyArgs('image'), '--messages', file]);
});

test('an image_url with a file:// URL', async () => {
  const file = messagesFile(askAbout({ type: 'image_url', image_url: { url: pathToFileURL(input('photo.jpg')).href } }, 'image'));
  await expectReference('image', [...greedyArgs('image'), '--messages', file]);
});

test('video parts: a relative path, and a video_url with a file:// URL', async () => {
  const dir = join(tmp, 'video');
  mkdirSync(dir, { recursive: true });
  const video = makeFramesVideo(join(dir, 'frames.mkv'));
  const relative = messagesFile(askAbout({ type: 'video', path: 'frames.mkv' }, 'video'), dir);
  await expectReference('video', [...greedyArgs('video'), '--frames', '4', '--messages', relative]);
  const url = messagesFile(askAbout({ type: 'video_url', video_url: { url: pathToFileURL(video).href } }, 'video'));
  await expectReference('video', [...greedyArgs('video'), '--frames', '4', '--messages', url]);
});

/** `ovis ask --messages FILE` must fail with exit 3, a message matching `pattern`, nothing on stdout. */
async function refused(file: string, pattern: RegExp, words: string[] = []) {
  const r = await runOvis(['ask', '--model', fixtureDir, '--max-new-tokens', '1', '--messages', file, ...words]);
  assert.is(r.code, 3, `${file}: ${r.stderr}`);
  assert.match(r.stderr, pattern);
  assert.ok(r.stderr.includes(file), `the message names the file: ${r.stderr}`);
  assert.is(r.stdout, '');
}

test('not JSON, or no such file', async () => {
  await Promise.all([
    refused(messagesFile('[{"role": "user", "content": "Hi"'), /cannot read it as JSON/),
    refused(join(tmp, 'absent.json'), /cannot read it as JSON .*no such file/i),
  ]);
});

test('not an array of messages', async () => {
  await refused(messagesFile({ role: 'user', content: 'Hi' }), /expected a JSON array of \{role, content\} messages/);
});

test('a bad role, or content that is neither text nor parts', async () => {
  await Promise.all([
    refused(messagesFile([{ role: 'tool', content: 'Hi' }]), /message 0 has role "tool"; use system, user or assistant/),
    refused(messagesFile([{ role: 'user', content: 'Hi' }, { content: 'no role' }]), /message 1 has role undefined/),
    refused(messagesFile([{ role: 'user', content: 42 }]), /message 0: content must be a string or an array of parts/),
  ]);
});

test('a part of an unknown type, or a medium without a path', async () => {
  await Promise.all([
    refused(messagesFile([{ role: 'user', content: [{ type: 'audio', path: 'a.wav' }] }]), /message 0 part 0 has type "audio"; use text, image, video, image_url or video_url/),
    refused(messagesFile([{ role: 'user', content: [{ type: 'text', text: 'Hi' }, { type: 'image' }] }]), /message 0 part 1: a image part needs a path or url/),
  ]);
});

test('a missing media file names the path it looked for (relative to the messages file)', async () => {
  const file = messagesFile([{ role: 'user', content: [{ type: 'image', path: 'missing.png' }, { type: 'text', text: 'What?' }] }]);
  const r = await runOvis(['ask', '--model', fixtureDir, '--messages', file]);
  assert.is(r.code, 3, r.stderr);
  assert.ok(r.stderr.includes(join(tmp, 'missing.png')), r.stderr);
  assert.match(r.stderr, /no such file/);
});

test('a remote URL is refused with what to do; so is a video data: URL', async () => {
  await Promise.all([
    refused(messagesFile(askAbout({ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }, 'image')), /https:\/\/example\.com\/cat\.png is a remote URL; download it and give the file/),
    refused(messagesFile(askAbout({ type: 'video_url', video_url: { url: 'data:video/mp4;base64,AAAA' } }, 'video')), /videos must be files, not data: URLs/),
  ]);
});

test.run();

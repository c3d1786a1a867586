// `ovis ask` with images and video, end to end from the fixture's files through the real engine
// (tolerances: test/helpers/vision.ts). Each test makes the files it needs.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runOvis, withoutFfmpegStatic } from '../helpers/cli.js';
import { caseOf } from '../helpers/reference.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';
import { expectReference, greedyArgs, hasFfmpeg, input, makeFramesVideo, questionOf } from '../helpers/vision.js';

const tmp = tempDir('ovis-vision-');
test.after(() => removeTempDir(tmp));

test('image case: ids, first log-probability, and vision time reported', async () => {
  const done = await expectReference('image', [...greedyArgs('image'), input('photo.jpg'), questionOf('image')]);
  assert.ok(done.timings.vision_ms > 0);
});

test('two_images case: two images in order', async () => {
  await expectReference('two_images', [...greedyArgs('two_images'), input('small.png'), input('tall.png'), questionOf('two_images')]);
});

test('an <image> marker places the image exactly where the default order does', async () => {
  await expectReference('image', [...greedyArgs('image'), '-a', input('photo.jpg'), `<image>\n${questionOf('image')}`]);
});

test('-a - reads the image from stdin', async () => {
  await expectReference('image', [...greedyArgs('image'), '-a', '-', questionOf('image')], { input: readFileSync(input('photo.jpg')) });
});

let framesMkv: string | undefined;
/** The fixture's frames as a lossless video, made by the first test that needs it (any order). */
function framesVideo(): string {
  framesMkv ??= makeFramesVideo(join(tmp, 'frames.mkv'));
  return framesMkv;
}

test('video case: a lossless video of the frames, 4 frames sampled', async () => {
  await expectReference('video', [...greedyArgs('video'), '--frames', '4', framesVideo(), questionOf('video')]);
});

test('images and a video together are refused with an input error', async () => {
  const r = await runOvis([...greedyArgs('image'), input('photo.jpg'), '-a', framesVideo(), 'Both?']);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /images and a video/);
});

test('marker count must match the media count', async () => {
  const r = await runOvis([...greedyArgs('image'), input('photo.jpg'), 'First <image> then <image>?']);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /marker|placeholder/i);
});

test('corrupt, empty and truncated images are input errors naming the file', async () => {
  const files: Record<string, Buffer> = {
    'random.png': Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7919) % 251)),
    'empty.jpg': Buffer.alloc(0),
    'truncated.jpg': readFileSync(input('photo.jpg')).subarray(0, 600),
  };
  for (const [name, bytes] of Object.entries(files)) {
    writeFileSync(join(tmp, name), bytes);
    const r = await runOvis([...greedyArgs('image'), '-a', join(tmp, name), 'What is it?']);
    assert.is(r.code, 3, `${name}: ${r.stderr}`);
    assert.ok(r.stderr.includes(name), `${name}: ${r.stderr}`);
  }
});

test('an image over --max-input-pixels is refused (decompression bomb guard)', async () => {
  const r = await runOvis([...greedyArgs('image'), '--max-input-pixels', '1000', input('photo.jpg'), 'What is it?']);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /photo\.jpg/);
});

test('a video without frames is an input error', async () => {
  if (!hasFfmpeg) throw new Error('ffmpeg is needed for the video tests (.ci/run installs it)');
  const audio = join(tmp, 'silence.mkv');
  const made = spawnSync('ffmpeg', ['-y', '-v', 'error', '-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '0.5', audio]);
  assert.is(made.status, 0, made.stderr.toString());
  const r = await runOvis([...greedyArgs('video'), audio, 'What happens?']);
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /silence\.mkv/);
});

test('no usable ffmpeg is an input error that says where ovis looked', async () => {
  // Runs whether or not ffmpeg-static's binary is on this machine: the package is hidden from the
  // ovis process, OVIS_FFMPEG points nowhere and PATH has no ffmpeg. The video needs no decoder to
  // be made here (ovis only needs a readable file before it looks for ffmpeg).
  const video = join(tmp, 'no-ffmpeg.mkv');
  writeFileSync(video, 'not decoded: ffmpeg is looked for first');
  const env = withoutFfmpegStatic({ OVIS_FFMPEG: '/nonexistent/ffmpeg', PATH: '/nonexistent' });
  const r = await runOvis([...greedyArgs('video'), '-a', video, 'What happens?'], { env });
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /ffmpeg-static/);
  assert.match(r.stderr, /OVIS_FFMPEG=\/nonexistent\/ffmpeg/);
  assert.match(r.stderr, /PATH/);
});

test('multiturn case: a --messages conversation with an image, then a follow-up prompt', async () => {
  const c = caseOf('multiturn');
  const [system, user, assistant, last] = c.messages;
  const conversation = [
    system,
    { role: 'user', content: user.content.map((p: any) => (p.type === 'image' ? { type: 'image', path: input('small.png') } : p)) },
    assistant,
  ];
  const file = join(tmp, 'conversation.json');
  writeFileSync(file, JSON.stringify(conversation));
  await expectReference('multiturn', [...greedyArgs('multiturn'), '--messages', file, last.content]);
});

test('a --messages file whose last turn is the question needs no prompt', async () => {
  const file = join(tmp, 'question.json');
  const url = `data:image/jpeg;base64,${readFileSync(input('photo.jpg')).toString('base64')}`;
  writeFileSync(file, JSON.stringify([{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: questionOf('image') }] }]));
  await expectReference('image', [...greedyArgs('image'), '--messages', file]);
});

test.run();

// Video: frame sampling, ffmpeg lookup and probing, and the whole pipeline on a lossless video made
// from the fixture's frames (README: FFV1/Matroska decodes to the same pixels). Needs an ffmpeg
// (ffmpeg-static, OVIS_FFMPEG or PATH; .ci/run installs one); without one those tests fail.
import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.js';
import { findFfmpeg, parseFfmpegInfo, type Ffmpeg } from '../../src/media/ffmpeg.js';
import { patchify } from '../../src/media/patchify.js';
import { PpmStreamReader, type RgbFrame } from '../../src/media/ppm-stream.js';
import { prepareVideo, sampleFrameIndices } from '../../src/media/video.js';
import { readSafetensors, toNumbers } from '../helpers/safetensors.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';

const FIXTURE = join(import.meta.dirname, '../fixtures/tiny-ovis2.5');
const expected = readSafetensors(join(FIXTURE, 'expected.safetensors'));
// the fixture's video case budget
const BUDGET = { minPixels: 16384, maxPixels: 102400 };
const dir = tempDir('ovis-video-');
test.after(() => removeTempDir(dir));

let ffmpeg: Ffmpeg | undefined;
test.before(async () => {
  ffmpeg = await findFfmpeg().catch(() => undefined);
});
/** A test that needs ffmpeg; without one it fails saying so (it must not pass without decoding). */
function withFfmpeg(name: string, fn: () => Promise<void>): void {
  test(name, async () => {
    if (!ffmpeg) throw new Error('ffmpeg is needed for the video tests: install it (.ci/run does) or set OVIS_FFMPEG');
    await fn();
  });
}

async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<void> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, InputError);
    assert.match((e as Error).message, pattern);
    return;
  }
  assert.unreachable('expected an InputError');
}

/** Run ffmpeg to make a test video; the frames are the fixture's PNGs at 4 fps. */
function makeVideo(name: string, args: string[]): string {
  const out = join(dir, name);
  execFileSync(ffmpeg!.path, ['-hide_banner', '-loglevel', 'error', '-y', '-framerate', '4', '-start_number', '0',
    '-i', join(FIXTURE, 'inputs/frame%d.png'), ...args, out]);
  return out;
}

let framesMkv: string | undefined;
/** The fixture's frames as a lossless FFV1 video: made by the first test that needs it, whichever
 * that is, so no test depends on another having run. */
function framesVideo(): string {
  framesMkv ??= makeVideo('frames.mkv', ['-c:v', 'ffv1']);
  return framesMkv;
}

/** Element-wise equality that reports the first difference (a full diff of 1M floats is useless). */
function assertSame(got: ArrayLike<number>, want: ArrayLike<number>, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) assert.unreachable(`${what}: value ${i} is ${got[i]}, expected ${want[i]}`);
}

/** The reference's pixels for the given frames of the fixture video, patchified. */
function referencePatches(frames: number[]): Float32Array {
  const t = frames.map((k) => expected.get(`video.resized.${k}`)!);
  const [h, w] = t[0].shape;
  return patchify(t.map((x) => x.data as Uint8Array), w, h).pixels;
}

test('sampleFrameIndices is the demo formula int(i·total/n)', () => {
  assert.equal(sampleFrameIndices(240, 8), [0, 30, 60, 90, 120, 150, 180, 210]);
  assert.equal(sampleFrameIndices(4, 4), [0, 1, 2, 3]);
  assert.equal(sampleFrameIndices(4, 8), [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.equal(sampleFrameIndices(10, 3), [0, 3, 6]);
  assert.equal(sampleFrameIndices(0, 2), [0, 0]);
});

test('PpmStreamReader splits a P6 stream however it is chunked', () => {
  const a = Buffer.concat([Buffer.from('P6\n2 1\n255\n'), Buffer.from([1, 2, 3, 4, 5, 6])]);
  const b = Buffer.concat([Buffer.from('P6 1 2\n# comment\n255\n'), Buffer.from([10, 32, 10, 7, 8, 9])]);
  const stream = Buffer.concat([a, b]);
  for (const size of [1, 3, 7, stream.length]) {
    const frames: RgbFrame[] = [];
    const r = new PpmStreamReader((f) => frames.push(f));
    for (let i = 0; i < stream.length; i += size) r.push(stream.subarray(i, i + size));
    assert.is(r.leftover, 0);
    assert.equal(frames.map((f) => [f.width, f.height, Array.from(f.data)]), [[2, 1, [1, 2, 3, 4, 5, 6]], [1, 2, [10, 32, 10, 7, 8, 9]]], `chunk ${size}`);
  }
  assert.throws(() => new PpmStreamReader(() => {}).push(Buffer.from('P3\n1 1\n255\n')));
  assert.throws(() => new PpmStreamReader(() => {}).push(Buffer.from('P6\n1 1\n65535\n')));
});

test('parseFfmpegInfo reads duration and rate as moviepy does', () => {
  const mp4 = `Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'a.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 1205 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(progressive), 1920x1080 [SAR 1:1 DAR 16:9], 1000 kb/s, 23.98 fps, 23.98 tbr, 24k tbn (default)
  Stream #0:1[0x2](und): Audio: aac (LC) (mp4a / 0x6134706D), 44100 Hz, stereo, fltp, 128 kb/s (default)`;
  const i = parseFfmpegInfo(mp4)!;
  assert.is(i.duration, 62.5);
  assert.is(i.fps, 24 * (1000 / 1001)); // 23.98 snaps to the NTSC rate
  assert.equal([i.width, i.height], [1920, 1080]);
  assert.is(Math.trunc(i.fps! * i.duration!), 1498);
  const mjpeg = `  Duration: N/A, bitrate: N/A
  Stream #0:0: Video: mjpeg (Baseline), yuvj444p(pc, bt470bg/unknown/unknown), 320x240, 25 tbr, 1200k tbn`;
  assert.equal(parseFfmpegInfo(mjpeg), { fps: 25, duration: null, width: 320, height: 240 });
  assert.is(parseFfmpegInfo('  Duration: 00:00:01.00\n  Stream #0:0: Audio: pcm_s16le, 8000 Hz, mono'), null);
});

test('missing ffmpeg: an InputError naming all three places', async () => {
  const opts = { staticPath: null, env: { OVIS_FFMPEG: join(dir, 'no-such-ffmpeg'), PATH: join(dir, 'empty-path') } };
  await rejectsInput(findFfmpeg(opts), /ffmpeg-static.*OVIS_FFMPEG=.*no-such-ffmpeg \(not found\).*ffmpeg on PATH \(not found\).*Install ffmpeg/s);
  await rejectsInput(findFfmpeg({ ...opts, env: { PATH: '' } }), /OVIS_FFMPEG \(not set\)/);
  await rejectsInput(findFfmpeg({ ffmpegPath: join(dir, 'nope') }), /nope not found/);
  // the pipeline surfaces the same error once the file itself is readable
  const file = join(dir, 'some.mkv');
  writeFileSync(file, 'x');
  await rejectsInput(prepareVideo(file, opts), /videos need ffmpeg/);
});

test('missing or empty video file', async () => {
  await rejectsInput(prepareVideo(join(dir, 'absent.mp4')), /cannot read video .*absent\.mp4: no such file/);
  const empty = join(dir, 'empty.mp4');
  writeFileSync(empty, '');
  await rejectsInput(prepareVideo(empty), /empty\.mp4 is empty/);
});

withFfmpeg('FFV1 video of the fixture frames: 4 sampled frames equal video.resized.K, grid equals video.grid_thws', async () => {
  const v = await prepareVideo(framesVideo(), { frames: 4, ...BUDGET });
  assert.equal(v.info.fps, 4);
  assert.equal(v.info.duration, 1);
  assert.equal(v.frameIndices, [0, 1, 2, 3]);
  assert.equal(v.grid, toNumbers(expected.get('video.grid_thws')!));
  assert.equal(v.resized, { height: 256, width: 320 });
  assertSame(v.pixels, referencePatches([0, 1, 2, 3]), 'pixels');
});

withFfmpeg('8 frames from a 4-frame video repeat frames as the demo does', async () => {
  const v = await prepareVideo(framesVideo(), BUDGET);
  assert.equal(v.frameIndices, [0, 0, 1, 1, 2, 2, 3, 3]);
  assert.equal(v.grid, [8, 16, 20]);
  assertSame(v.pixels, referencePatches([0, 0, 1, 1, 2, 2, 3, 3]), 'pixels');
});

withFfmpeg('container longer than the video stream: indices past the end take the last frame', async () => {
  // 1 s of video, 3 s of silence: total = int(4·3) = 12, indices 0, 3, 6, 9 (6 and 9 do not exist)
  const path = makeVideo('long.mkv', ['-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '3', '-map', '0:v', '-map', '1:a', '-c:v', 'ffv1', '-c:a', 'pcm_s16le']);
  const v = await prepareVideo(path, { frames: 4, ...BUDGET });
  assert.equal(v.frameIndices, [0, 3, 6, 9]);
  assertSame(v.pixels, referencePatches([0, 3, 3, 3]), 'pixels');
});

withFfmpeg('no duration in the container (raw MJPEG): frames are counted instead', async () => {
  const v = await prepareVideo(makeVideo('raw.mjpeg', ['-c:v', 'mjpeg', '-q:v', '2', '-f', 'mjpeg']), { frames: 4, ...BUDGET });
  assert.is(v.info.duration, null);
  assert.equal(v.frameIndices, [0, 1, 2, 3]);
  assert.equal(v.grid, [4, 16, 20]);
});

withFfmpeg('video error paths: no frames, no video stream, not a video, frame too large', async () => {
  const noFrames = join(dir, 'noframes.y4m');
  writeFileSync(noFrames, 'YUV4MPEG2 W32 H32 F4:1 Ip A1:1 C420jpeg\n'); // a header and nothing else
  await rejectsInput(prepareVideo(noFrames), /noframes\.y4m has no frames/);
  const audio = join(dir, 'audio.mkv');
  execFileSync(ffmpeg!.path, ['-hide_banner', '-loglevel', 'error', '-y', '-f', 'lavfi', '-i', 'anullsrc=r=8000:cl=mono', '-t', '1', '-c:a', 'pcm_s16le', audio]);
  await rejectsInput(prepareVideo(audio), /audio\.mkv has no video stream/);
  const junk = join(dir, 'junk.mp4');
  writeFileSync(junk, Buffer.alloc(5000, 7));
  await rejectsInput(prepareVideo(junk), /cannot read video .*junk\.mp4/);
  await rejectsInput(prepareVideo(framesVideo(), { maxInputPixels: 320 * 240 - 1 }), /320×240 frames, over the limit of 76799 pixels/);
});

test.run();

// One video file → the engine's vision input (model-spec.md §2.6): sample N frames the way the
// official demo does (moviepy: total = int(fps·duration), idx_i = int(i·total/N), frame idx_i/fps),
// decode exactly those frames with ffmpeg as RGB, resize every frame to the smart_resize size of
// frame 0 with Pillow-exact bilinear, and patchify into one grid [N, gh, gw].
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { InputError, TooLargeInputError } from '../errors.js';
import { DEFAULT_MAX_INPUT_PIXELS, formatPixels } from './decode-image.js';
import { findFfmpeg, parseFfmpegInfo, run, type Ffmpeg, type FindFfmpegOptions, type VideoInfo } from './ffmpeg.js';
import type { MediaTimings } from './image.js';
import { patchify, type Grid } from './patchify.js';
import { resizeBilinearRgb } from './pil-bilinear.js';
import { PpmStreamReader, type RgbFrame } from './ppm-stream.js';
import { smartResize, VIDEO_MAX_PIXELS, VIDEO_MIN_PIXELS, type Size } from './smart-resize.js';

/** The official demos sample 8 frames. */
export const DEFAULT_VIDEO_FRAMES = 8;

export interface PrepareVideoOptions extends FindFfmpegOptions {
  /** Frames to sample (default 8). */
  frames?: number;
  /** Per-frame pixel budget after resizing (default 448·448 .. 896·896). */
  minPixels?: number;
  maxPixels?: number;
  /** Largest decoded frame accepted (width·height, default DEFAULT_MAX_INPUT_PIXELS). */
  maxInputPixels?: number;
  signal?: AbortSignal;
}

export interface PreparedVideo {
  /** [frames·gh·gw, 768] f32, frames concatenated */
  pixels: Float32Array;
  /** [frames, gh, gw] */
  grid: Grid;
  /** decoded index of each sampled frame (repeats when the video has fewer frames than asked) */
  frameIndices: number[];
  info: VideoInfo;
  /** size of frame 0 as decoded (after ffmpeg's rotation), pixels */
  original: Size;
  resized: Size;
  timings: MediaTimings;
}

/** The official demo's frame indices: int(i·total/n) for i in 0..n−1 (f64 division, truncation). */
export function sampleFrameIndices(total: number, n: number): number[] {
  return Array.from({ length: n }, (_, i) => Math.trunc((i * total) / n));
}

export async function prepareVideo(path: string, options: PrepareVideoOptions = {}): Promise<PreparedVideo> {
  const n = options.frames ?? DEFAULT_VIDEO_FRAMES;
  if (!(Number.isInteger(n) && n >= 1)) throw new InputError(`cannot sample ${n} frames from a video; give a whole number ≥ 1`);
  const maxInput = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const t0 = performance.now();
  await checkReadable(path);
  const ffmpeg = await findFfmpeg(options);
  // an explicit file: URL, so a name like "concat:a|b" or "http://…" is never read as a protocol
  const input = `file:${resolve(path)}`;
  const info = await probe(ffmpeg, input, path, options.signal);
  if (info.width !== null && info.height !== null && maxInput > 0 && info.width * info.height > maxInput) {
    throw new TooLargeInputError(
      `video ${path} has ${info.width}×${info.height} frames, over the limit of ${formatPixels(maxInput)} per frame; scale it down first`,
    );
  }
  const total = info.fps !== null && info.duration !== null ? Math.trunc(info.fps * info.duration) : await countFrames(ffmpeg, input, options.signal);
  const frameIndices = sampleFrameIndices(total, n);
  const frames = await decodeFrames(ffmpeg, input, path, frameIndices, maxInput, options.signal);
  const t1 = performance.now();

  const first = frames[0];
  const size = smartResize(first.height, first.width, options.minPixels ?? VIDEO_MIN_PIXELS, options.maxPixels ?? VIDEO_MAX_PIXELS);
  // frames sampled twice are the same object: resize each once
  const resized = new Map<RgbFrame, Uint8Array>();
  for (const f of frames) {
    if (!resized.has(f)) resized.set(f, resizeBilinearRgb(f.data, f.width, f.height, size.width, size.height));
  }
  const t2 = performance.now();
  const { pixels, grid } = patchify(frames.map((f) => resized.get(f)!), size.width, size.height);
  const t3 = performance.now();
  return {
    pixels,
    grid,
    frameIndices,
    info,
    original: { width: first.width, height: first.height },
    resized: size,
    timings: { decodeMs: t1 - t0, resizeMs: t2 - t1, patchifyMs: t3 - t2 },
  };
}

async function checkReadable(path: string): Promise<void> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new InputError(`cannot read video ${path}: it is a directory`);
    if (s.size === 0) throw new InputError(`video ${path} is empty (0 bytes); give a video file`);
  } catch (err) {
    if (err instanceof InputError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    throw new InputError(`cannot read video ${path}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}; check the path`, { cause: err });
  }
}

const QUIET = ['-hide_banner', '-nostdin'];

/** `input` is what ffmpeg reads, `path` what the user gave (for messages). */
async function probe(ffmpeg: Ffmpeg, input: string, path: string, signal?: AbortSignal): Promise<VideoInfo> {
  // Without an output ffmpeg exits 1 after printing the input's description; that is expected.
  const r = await run(ffmpeg.path, [...QUIET, '-i', input], { env: ffmpeg.env, signal });
  const info = parseFfmpegInfo(r.stderr);
  if (info === null) {
    const why = lastLine(r.stderr).replace(`${input}: `, '');
    throw new InputError(
      /Stream #/.test(r.stderr) ? `${path} has no video stream` : `cannot read video ${path}: ${why || 'ffmpeg does not recognise it'}; is it a video file?`,
    );
  }
  return info;
}

/** Fallback when the container gives no duration or rate: count the video packets (no decoding). */
async function countFrames(ffmpeg: Ffmpeg, input: string, signal?: AbortSignal): Promise<number> {
  const r = await run(ffmpeg.path, [...QUIET, '-i', input, '-map', '0:v:0', '-c', 'copy', '-f', 'null', '-'], { env: ffmpeg.env, signal });
  const all = [...r.stderr.matchAll(/frame=\s*(\d+)/g)];
  return all.length > 0 ? Number(all[all.length - 1][1]) : 0;
}

/**
 * Decode the frames with the given (sorted, possibly repeated) decode-order indices as RGB.
 * Indices past the real end (the container's duration can overstate the video stream) get the
 * last frame, as moviepy does.
 */
async function decodeFrames(ffmpeg: Ffmpeg, input: string, path: string, indices: number[], maxInput: number, signal?: AbortSignal): Promise<RgbFrame[]> {
  const unique = [...new Set(indices)].sort((a, b) => a - b);
  const expr = unique.map((i) => `eq(n\\,${i})`).join('+');
  const got = await selectFrames(ffmpeg, input, path, expr, maxInput, false, signal);
  const byIndex = new Map<number, RgbFrame>();
  got.forEach((f, k) => byIndex.set(unique[k], f));
  if (got.length < unique.length) {
    // the remaining indices lie past the end: fetch the video's last frame
    const from = got.length > 0 ? unique[got.length - 1] + 1 : 0;
    const tail = await selectFrames(ffmpeg, input, path, `gte(n\\,${from})`, maxInput, true, signal);
    const last = tail[0] ?? got[got.length - 1];
    if (last === undefined) throw new InputError(`video ${path} has no frames that ffmpeg can decode`);
    for (const i of unique.slice(got.length)) byIndex.set(i, last);
  }
  return indices.map((i) => byIndex.get(i)!);
}

async function selectFrames(ffmpeg: Ffmpeg, input: string, path: string, expr: string, maxInput: number, keepLastOnly: boolean, signal?: AbortSignal): Promise<RgbFrame[]> {
  const frames: RgbFrame[] = [];
  let tooLarge: RgbFrame | undefined;
  const reader = new PpmStreamReader((f) => {
    if (maxInput > 0 && f.width * f.height > maxInput) tooLarge ??= f;
    else if (keepLastOnly) frames[0] = f;
    else frames.push(f);
  });
  const args = [
    ...QUIET, '-loglevel', 'error', '-i', input,
    '-map', '0:v:0', '-an', '-sn', '-dn',
    // `n` counts decoded frames from 0, like moviepy reading the stream frame by frame
    '-vf', `select=${expr}`,
    // pass the selected frames through as they are: a constant-rate output would duplicate them
    ...(ffmpeg.hasFpsMode ? ['-fps_mode', 'passthrough'] : ['-vsync', 'passthrough']),
    // moviepy's conversion flags; PPM carries each frame's size (rotation is applied by ffmpeg)
    '-sws_flags', 'bicubic', '-pix_fmt', 'rgb24', '-f', 'image2pipe', '-c:v', 'ppm', '-',
  ];
  let parseError: unknown;
  const r = await run(ffmpeg.path, args, {
    env: ffmpeg.env,
    signal,
    onStdout: (c) => {
      if (parseError !== undefined) return;
      try {
        reader.push(c);
      } catch (e) {
        parseError = e;
      }
    },
  });
  if (tooLarge) {
    throw new InputError(`video ${path} has ${tooLarge.width}×${tooLarge.height} frames, over the limit of ${formatPixels(maxInput)} per frame; scale it down first`);
  }
  if (parseError !== undefined) throw parseError;
  if (r.code !== 0 && frames.length === 0) {
    throw new InputError(`cannot decode video ${path}: ${lastLine(r.stderr) || `ffmpeg exited with ${r.code}`}`);
  }
  return frames;
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim();
}

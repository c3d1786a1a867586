// Sizes of a dataset's media, read from headers only: a check needs the stored size of each image
// (sharp's metadata reads the header, not the pixels) and a video's frame size (`ffmpeg -i`, no
// decoding). `decode: true` decodes every image fully, to catch files whose header is fine but
// whose data is cut off. Results are cached per path: datasets reuse images a lot.
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import sharp, { type Metadata } from 'sharp';
import { findFfmpeg, parseFfmpegInfo, run } from '../media/ffmpeg.js';

export interface MediaSize {
  /** pixels as the trainers see them */
  width: number;
  height: number;
}

/** A medium that cannot be used, with the reason in words. */
export class MediaProblem extends Error {
  constructor(
    readonly code: 'missing-media' | 'bad-media',
    message: string,
  ) {
    super(message);
  }
}

/** Image formats Pillow (both trainers' reader) opens and sharp can read the header of. */
const IMAGE_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif', 'bmp']);

export class MediaSizer {
  private readonly images = new Map<string, Promise<MediaSize>>();
  private readonly videos = new Map<string, Promise<MediaSize>>();

  constructor(private readonly options: { decode?: boolean } = {}) {}

  image(path: string): Promise<MediaSize> {
    let p = this.images.get(path);
    if (!p) {
      p = this.readImage(path);
      this.images.set(path, p);
    }
    return p;
  }

  video(path: string): Promise<MediaSize> {
    let p = this.videos.get(path);
    if (!p) {
      p = this.readVideo(path);
      this.videos.set(path, p);
    }
    return p;
  }

  private async readImage(path: string): Promise<MediaSize> {
    await mustExist(path);
    let meta: Metadata;
    try {
      meta = await sharp(path, { limitInputPixels: false }).metadata();
    } catch (err) {
      throw new MediaProblem('bad-media', `${path} is not a readable image (${firstLine(err)})`);
    }
    if (!IMAGE_FORMATS.has(meta.format ?? '') || !meta.width || !meta.height) {
      throw new MediaProblem('bad-media', `${path} is not an image the trainers read (format ${meta.format ?? 'unknown'})`);
    }
    if (this.options.decode) {
      try {
        await sharp(path, { limitInputPixels: false, failOn: 'truncated' }).raw().toBuffer();
      } catch (err) {
        throw new MediaProblem('bad-media', `${path} does not decode (${firstLine(err)})`);
      }
    }
    // The stored size, EXIF orientation NOT applied: both trainers open images with Pillow, which
    // does not rotate. The first frame of an animation (pageHeight), as Pillow opens it.
    return { width: meta.width, height: meta.pageHeight ?? meta.height };
  }

  private async readVideo(path: string): Promise<MediaSize> {
    await mustExist(path);
    const ffmpeg = await findFfmpeg();
    // Without an output ffmpeg prints the description and exits 1: expected. `file:` keeps a name
    // like "concat:a|b" from being read as a protocol.
    const r = await run(ffmpeg.path, ['-hide_banner', '-nostdin', '-i', `file:${resolve(path)}`], { env: ffmpeg.env });
    const info = parseFfmpegInfo(r.stderr);
    if (info === null || info.width === null || info.height === null) {
      throw new MediaProblem('bad-media', `${path} is not a readable video (${lastLine(r.stderr) || 'no video stream'})`);
    }
    // Frames come out rotated as the container says (ffmpeg and moviepy both apply it).
    const rotation = /rotation of (-?\d+(?:\.\d+)?) degrees|rotate\s*:\s*(-?\d+)/.exec(r.stderr);
    const degrees = rotation ? Math.abs(Math.round(Number(rotation[1] ?? rotation[2]))) % 180 : 0;
    return degrees === 90 ? { width: info.height, height: info.width } : { width: info.width, height: info.height };
  }
}

async function mustExist(path: string): Promise<void> {
  try {
    const s = await stat(path);
    if (s.isDirectory()) throw new MediaProblem('bad-media', `${path} is a directory, not a file`);
    if (s.size === 0) throw new MediaProblem('bad-media', `${path} is empty (0 bytes)`);
  } catch (err) {
    if (err instanceof MediaProblem) throw err;
    throw new MediaProblem('missing-media', `${path} does not exist`);
  }
}

function firstLine(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0];
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n');
  return (lines[lines.length - 1] ?? '').trim();
}

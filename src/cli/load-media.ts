// Loads the media of a prompt (images via sharp, a video via ffmpeg) into patch rows and grids.
import { InputError } from '../errors.js';
import { prepareImage } from '../media/image.js';
import { prepareVideo } from '../media/video.js';
import type { Logger } from '../output/logger.js';
import type { MediaArg } from './media-args.js';

export interface LoadedMedium {
  kind: 'image' | 'video';
  /** [N, 768] f32 patch rows, N = t·h·w. */
  pixels: Float32Array;
  grid: [number, number, number];
}

export interface MediaOptions {
  minPixels: number;
  maxPixels?: number;
  frames: number;
  maxInputPixels: number;
}

export async function loadMedia(media: readonly MediaArg[], opts: MediaOptions, log: Logger, stdin: NodeJS.ReadableStream = process.stdin): Promise<LoadedMedium[]> {
  const videos = media.filter((m) => m.kind === 'video');
  if (videos.length > 1) throw new InputError(`${videos.length} videos given (${videos.map((v) => v.source).join(', ')}): the model takes one video per prompt`);
  if (videos.length === 1 && media.length > 1) {
    throw new InputError('images and a video in one prompt are not supported by the model (as in the reference); ask about them separately');
  }
  const out: LoadedMedium[] = [];
  for (const m of media) {
    const t0 = performance.now();
    if (m.kind === 'video') {
      const v = await prepareVideo(m.source, { frames: opts.frames, minPixels: opts.minPixels, maxPixels: opts.maxPixels, maxInputPixels: opts.maxInputPixels });
      out.push({ kind: 'video', pixels: v.pixels, grid: [...v.grid] as [number, number, number] });
    } else {
      const source = m.bytes ?? (m.source === '-' ? await readAll(stdin) : m.source);
      const img = await prepareImage(source, { minPixels: opts.minPixels, maxPixels: opts.maxPixels, maxInputPixels: opts.maxInputPixels, name: m.source === '-' ? 'standard input' : m.source });
      out.push({ kind: 'image', pixels: img.pixels, grid: [...img.grid] as [number, number, number] });
    }
    const g = out[out.length - 1].grid;
    log.verbose(`${m.source}: grid ${g.join('×')} (${(g[0] * g[1] * g[2]) / 4} visual tokens) in ${(performance.now() - t0).toFixed(1)} ms`);
  }
  return out;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  const all = Buffer.concat(chunks);
  if (all.length === 0) throw new InputError('--attach - reads an image from standard input, but standard input was empty');
  return all;
}

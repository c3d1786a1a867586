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
  /** Decoded size, and the size fed to the model (per frame for a video), in pixels. */
  original: { width: number; height: number };
  resized: { width: number; height: number };
  /** The file's bytes when they came from stdin (kept so a saved conversation can hold them). */
  bytes?: Uint8Array;
}

export interface MediaOptions {
  minPixels: number;
  maxPixels?: number;
  frames: number;
  maxInputPixels: number;
}

/** Visual tokens a medium takes in the prompt (t·h·w / 4: 2×2 patches merge into one). */
export const visualTokens = (grid: readonly number[]) => (grid[0] * grid[1] * grid[2]) / 4;

/** The model's rule for media in one prompt: several images, or one video alone (as the reference). */
export function checkMediaMix(media: readonly { kind: 'image' | 'video'; source: string }[]): void {
  const videos = media.filter((m) => m.kind === 'video');
  if (videos.length > 1) throw new InputError(`${videos.length} videos given (${videos.map((v) => v.source).join(', ')}): the model takes one video per prompt`);
  if (videos.length === 1 && media.length > 1) {
    throw new InputError('images and a video in one prompt are not supported by the model (as in the reference); ask about them separately');
  }
}

export async function loadMedia(media: readonly MediaArg[], opts: MediaOptions, log: Logger, stdin: NodeJS.ReadableStream = process.stdin): Promise<LoadedMedium[]> {
  checkMediaMix(media);
  const out: LoadedMedium[] = [];
  for (const m of media) out.push(await loadMedium(m, opts, log, stdin));
  return out;
}

export async function loadMedium(m: MediaArg, opts: MediaOptions, log: Logger, stdin: NodeJS.ReadableStream = process.stdin): Promise<LoadedMedium> {
  const t0 = performance.now();
  let loaded: LoadedMedium;
  if (m.kind === 'video') {
    if (m.bytes) throw new InputError(`${m.source}: a video must be a file`);
    const v = await prepareVideo(m.source, { frames: opts.frames, minPixels: opts.minPixels, maxPixels: opts.maxPixels, maxInputPixels: opts.maxInputPixels });
    loaded = { kind: 'video', pixels: v.pixels, grid: [...v.grid] as [number, number, number], original: v.original, resized: v.resized };
  } else {
    const fromStdin = m.source === '-' && !m.bytes ? await readAll(stdin) : undefined;
    const source = m.bytes ?? fromStdin ?? m.source;
    const img = await prepareImage(source, { minPixels: opts.minPixels, maxPixels: opts.maxPixels, maxInputPixels: opts.maxInputPixels, name: m.source === '-' ? 'standard input' : m.source });
    loaded = { kind: 'image', pixels: img.pixels, grid: [...img.grid] as [number, number, number], original: img.original, resized: img.resized, bytes: fromStdin };
  }
  const g = loaded.grid;
  log.verbose(`${m.source}: ${loaded.original.width}×${loaded.original.height} → ${loaded.resized.width}×${loaded.resized.height}, grid ${g.join('×')} (${visualTokens(g)} visual tokens) in ${(performance.now() - t0).toFixed(1)} ms`);
  return loaded;
}

async function readAll(stream: NodeJS.ReadableStream): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(Buffer.from(c as Buffer));
  const all = Buffer.concat(chunks);
  if (all.length === 0) throw new InputError('--attach - reads an image from standard input, but standard input was empty');
  return all;
}

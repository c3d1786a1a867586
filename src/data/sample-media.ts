// A sample's media → one patch grid per medium, sized as the profile's trainer sizes them.
import { isAbsolute, resolve } from 'node:path';
import { InputError } from '../errors.js';
import { pyRound, smartResize } from '../media/smart-resize.js';
import type { GridTHW, MediaKind } from '../prompt/types.js';
import { MediaProblem, type MediaSizer } from './media-size.js';
import type { PixelRange, Profile } from './profiles.js';
import type { Problem } from './types.js';

export interface SampleMedia {
  kind: MediaKind;
  /** 'frames': a video given as a list of frame files (upstream only) */
  source: 'files' | 'video' | 'frames';
  /** absolute paths */
  paths: string[];
}

export function absolutePaths(paths: readonly string[], dir: string): string[] {
  return paths.map((p) => (isAbsolute(p) ? p : resolve(dir, p)));
}

/**
 * Upstream's frame choice for a list of `len` frames when it wants exactly `n`
 * (MultimodalDataset.read_video._sampling_idx with min = max = n; np.round is half-to-even).
 */
export function upstreamFrameIndices(len: number, n: number): number[] {
  if (len === n) return Array.from({ length: len }, (_, i) => i);
  const stride = len / n;
  return Array.from({ length: n }, (_, i) => Math.min(len - 1, Math.floor((pyRound(stride * i) + pyRound(stride * (i + 1))) / 2)));
}

const PATCH = 16;

export async function sampleGrids(media: SampleMedia, profile: Profile, sizer: MediaSizer, index: number): Promise<{ grids?: GridTHW[]; problems: Problem[] }> {
  const problems: Problem[] = [];
  const fail = (err: unknown) => {
    const code = err instanceof MediaProblem ? err.code : 'bad-media';
    problems.push({ severity: 'error', code, sample: index, message: `sample ${index}: ${(err as Error).message}` });
  };
  if (media.paths.length === 0) return { grids: [], problems };
  if (media.source === 'files') {
    const budget = media.paths.length === 1 ? profile.singleImage : profile.multiImage;
    const sizes = await Promise.all(media.paths.map((p) => sizer.image(p).catch((e: unknown) => (fail(e), undefined))));
    if (problems.length > 0) return { problems };
    try {
      return { grids: sizes.map((s) => grid(1, s!.height, s!.width, budget)), problems };
    } catch (e) {
      fail(e);
      return { problems };
    }
  }
  try {
    let first;
    if (media.source === 'frames') {
      // every listed frame must be readable; the size is the first sampled frame's
      const sizes = await Promise.all(media.paths.map((p) => sizer.image(p).catch((e: unknown) => (fail(e), undefined))));
      if (problems.length > 0) return { problems };
      first = sizes[upstreamFrameIndices(media.paths.length, profile.frames)[0]]!;
    } else {
      first = await sizer.video(media.paths[0]);
    }
    return { grids: [grid(profile.frames, first.height, first.width, profile.video)], problems };
  } catch (e) {
    fail(e);
    return { problems };
  }
}

function grid(frames: number, height: number, width: number, budget: PixelRange): GridTHW {
  const s = smartResize(height, width, budget.min, budget.max);
  if (s.height % PATCH || s.width % PATCH) throw new InputError(`unexpected resize to ${s.width}×${s.height}`);
  return [frames, s.height / PATCH, s.width / PATCH];
}

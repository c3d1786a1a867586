// One sample through every check: structure (in its own format), conversion to the profile's
// format when they differ, media headers, exact ids and labels, and the profile's length rule.
import type { PromptTokenizer } from '../prompt/encode.js';
import { swiftToUpstream, upstreamToSwift } from './convert-sample.js';
import type { MediaSizer } from './media-size.js';
import type { Profile } from './profiles.js';
import { absolutePaths, sampleGrids, type SampleMedia } from './sample-media.js';
import { swiftSequence } from './swift-tokens.js';
import { upstreamSequence } from './upstream-tokens.js';
import type { DatasetFormat, Problem, SampleTokens, SwiftSample, UpstreamSample } from './types.js';
import { validateSwift } from './validate-swift.js';
import { validateUpstream } from './validate-upstream.js';
import { plural } from './placeholders.js';

export interface CheckContext {
  format: DatasetFormat;
  profile: Profile;
  tokenizer: PromptTokenizer;
  sizer: MediaSizer;
  /** upstream: image_dir; swift: the folder relative paths are taken from */
  mediaDir: string;
}

export interface SampleReport {
  problems: Problem[];
  tokens?: SampleTokens;
}

export async function checkSample(raw: unknown, index: number, ctx: CheckContext): Promise<SampleReport> {
  const v = ctx.format === 'upstream' ? validateUpstream(raw, index) : validateSwift(raw, index);
  // the think-block warning only matters where ms-swift trains: upstream adds the block itself
  const problems = v.problems.filter((p) => ctx.profile.name === 'swift' || p.code !== 'no-think-block');
  if (!v.sample) return { problems };
  if (problems.some((p) => p.severity === 'error')) {
    // still say which media are missing or broken: one pass over the data finds everything
    const media = ctx.format === 'upstream' ? upstreamMedia(v.sample as UpstreamSample, ctx.mediaDir) : swiftMedia(v.sample as SwiftSample, ctx.mediaDir);
    problems.push(...(await sampleGrids(media, ctx.profile, ctx.sizer, index)).problems);
    return { problems };
  }

  const target = toProfileFormat(v.sample, index, ctx);
  problems.push(...target.problems.map((p) => (p.code === 'frames-unsupported' ? { ...p, severity: 'error' as const } : p)));
  if (!target.sample) return { problems };

  const media = target.media;
  const g = await sampleGrids(media, ctx.profile, ctx.sizer, index);
  problems.push(...g.problems);
  if (!g.grids) return { problems };

  let seq;
  try {
    seq = target.swift ? swiftSequence(ctx.tokenizer, target.swift, g.grids) : upstreamSequence(ctx.tokenizer, target.upstream!, g.grids, media.kind);
  } catch (err) {
    // the structure checks should have caught whatever gets here; one odd sample must not stop the run
    problems.push({ severity: 'error', code: 'bad-sample', sample: index, message: `sample ${index} cannot be tokenised: ${(err as Error).message}` });
    return { problems };
  }
  const max = ctx.profile.maxLength;
  let tokens: SampleTokens;
  if (ctx.profile.name === 'upstream') {
    const keep = seq.upstreamCut(max);
    tokens = seq.counts(keep);
    if (keep < seq.length) {
      const lost = seq.mediaCut(keep);
      problems.push({
        severity: 'warning',
        code: 'truncated',
        sample: index,
        message: `sample ${index} has ${seq.length} ids, over the max length ${max}: upstream cuts it to ${keep}${lost ? `, dropping ${plural(lost, 'medium')}` : ''}, leaving ${tokens.trained} trained ids`,
        detail: { total: seq.length, kept: keep, max, media_dropped: lost, trained: tokens.trained },
      });
    }
  } else {
    tokens = seq.counts();
    if (seq.length > max) {
      problems.push({
        severity: 'error',
        code: 'too-long',
        sample: index,
        message: `sample ${index} has ${seq.length} ids, over the max length ${max}: ms-swift drops it (truncation_strategy delete); shorten it or raise --max-length`,
        detail: { total: seq.length, max },
      });
    }
  }
  if (tokens.trained === 0) {
    problems.push({ severity: 'error', code: 'no-trained-tokens', sample: index, message: `sample ${index} has no trained id left (every answer is ignored, empty or cut off)`, detail: { total: seq.length } });
  }
  return { problems, tokens };
}

interface ProfileSample {
  upstream?: UpstreamSample;
  swift?: SwiftSample;
  sample?: UpstreamSample | SwiftSample;
  media: SampleMedia;
  problems: Problem[];
}

function toProfileFormat(sample: UpstreamSample | SwiftSample, index: number, ctx: CheckContext): ProfileSample {
  if (ctx.format === 'upstream') {
    const s = sample as UpstreamSample;
    const media = upstreamMedia(s, ctx.mediaDir);
    if (ctx.profile.name === 'upstream') return { upstream: s, sample: s, media, problems: [] };
    const c = upstreamToSwift(s, index, ctx.mediaDir);
    return { swift: c.sample, sample: c.sample, media, problems: c.problems };
  }
  const s = sample as SwiftSample;
  const media = swiftMedia(s, ctx.mediaDir);
  if (ctx.profile.name === 'swift') return { swift: s, sample: s, media, problems: [] };
  const c = swiftToUpstream(s, index, ctx.mediaDir, '/');
  return { upstream: c.sample, sample: c.sample, media, problems: c.problems };
}

function upstreamMedia(s: UpstreamSample, dir: string): SampleMedia {
  if (s.image !== undefined) return { kind: 'image', source: 'files', paths: absolutePaths(typeof s.image === 'string' ? [s.image] : s.image, dir) };
  if (s.video !== undefined) return { kind: 'video', source: 'video', paths: absolutePaths([s.video], dir) };
  if (s.video_frames !== undefined) return { kind: 'video', source: 'frames', paths: absolutePaths(s.video_frames, dir) };
  return { kind: 'image', source: 'files', paths: [] };
}

function swiftMedia(s: SwiftSample, dir: string): SampleMedia {
  if ((s.videos ?? []).length > 0) return { kind: 'video', source: 'video', paths: absolutePaths(s.videos!, dir) };
  return { kind: 'image', source: 'files', paths: absolutePaths(s.images ?? [], dir) };
}

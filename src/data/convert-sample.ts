// One sample from one format to the other, fixing what the two trainers do differently:
//   * media paths: upstream's are relative to image_dir, ms-swift's are written absolute;
//   * the newline after a media tag: ms-swift's Ovis2.5 template adds it itself ([-200], '\n'), so
//     upstream's `<image>\n` becomes `<image>` and back;
//   * the empty think block: upstream puts `<think>\n\n</think>\n\n` before every gpt answer that has
//     no think block of its own and does not train on it; for ms-swift it is written into the answer
//     (trained around with loss_scale ignore_empty_think), and taken out again going back;
//   * ignored_gpt ↔ an assistant message with "loss": false;
//   * a `video_frames` list has no ms-swift equivalent: such samples are reported, not converted.
import { isAbsolute, relative, resolve } from 'node:path';
import { EMPTY_THINK, hasThinking } from './placeholders.js';
import type { Problem, SwiftMessage, SwiftSample, UpstreamSample, UpstreamTurn } from './types.js';

export interface Converted<T> {
  sample?: T;
  problems: Problem[];
}

/** `imageDir`: the upstream dataset's image_dir (absolute). */
export function upstreamToSwift(s: UpstreamSample, index: number, imageDir: string): Converted<SwiftSample> {
  const problems: Problem[] = [];
  if (s.video_frames !== undefined) {
    problems.push({
      severity: 'warning',
      code: 'frames-unsupported',
      sample: index,
      message: `sample ${index} is a video given as ${s.video_frames.length} frame files ("video_frames"), which ms-swift cannot take; not converted (join the frames into a video file first)`,
    });
    return { problems };
  }
  const messages: SwiftMessage[] = s.conversations.map((t, i) => {
    switch (t.from) {
      case 'system':
        return { role: 'system', content: t.value };
      case 'human': {
        const bare = (t.value.match(/<(?:image|video)>(?!\n)/g) ?? []).length;
        if (bare > 0) {
          problems.push({
            severity: 'warning',
            code: 'tag-newline-added',
            sample: index,
            message: `sample ${index}, turn ${i}: ${bare} media tag(s) not followed by a newline; ms-swift's template puts one after every medium, so the text gains a newline there`,
            detail: { turn: i },
          });
        }
        return { role: 'user', content: t.value.replace(/<(image|video)>\n/g, '<$1>') };
      }
      case 'gpt':
        return { role: 'assistant', content: hasThinking(t.value) ? t.value : EMPTY_THINK + t.value };
      default:
        return { role: 'assistant', content: t.value, loss: false };
    }
  });
  const out: SwiftSample = { messages };
  const abs = (p: string) => resolve(imageDir, p);
  if (s.image !== undefined) out.images = (typeof s.image === 'string' ? [s.image] : s.image).map(abs);
  if (s.video !== undefined) out.videos = [abs(s.video)];
  return { sample: out, problems };
}

/**
 * `baseDir`: where a relative ms-swift path is taken from (the JSONL file's folder);
 * `imageDir`: the image_dir the upstream paths are written relative to.
 */
export function swiftToUpstream(s: SwiftSample, index: number, baseDir: string, imageDir: string): Converted<UpstreamSample> {
  const conversations: UpstreamTurn[] = s.messages.map((m) => {
    if (m.role === 'system') return { from: 'system', value: m.content };
    if (m.role === 'user') return { from: 'human', value: m.content.replace(/<(image|video)>/g, '<$1>\n') };
    if (m.loss === false) return { from: 'ignored_gpt', value: m.content };
    return { from: 'gpt', value: m.content.startsWith(EMPTY_THINK) ? m.content.slice(EMPTY_THINK.length) : m.content };
  });
  const out: UpstreamSample = { conversations };
  const rel = (p: string) => relative(imageDir, isAbsolute(p) ? p : resolve(baseDir, p));
  const images = s.images ?? [];
  if (images.length === 1) out.image = rel(images[0]);
  else if (images.length > 1) out.image = images.map(rel);
  if ((s.videos ?? []).length > 0) out.video = rel(s.videos![0]);
  return { sample: out, problems: [] };
}

// Structure checks of one upstream sample (AIDC-AI/Ovis ConversationDataset): roles and their order,
// media fields, tags against media, the pad token. Token counts come later (upstream-tokens.ts).
import { countOf, IMAGE_TAG, PAD_TOKEN, plural, VIDEO_TAG } from './placeholders.js';
import type { Problem, UpstreamSample } from './types.js';

const FROMS = new Set(['system', 'human', 'gpt', 'ignored_gpt']);

/** The media of a valid sample, relative to image_dir, in tag order. */
export interface UpstreamMedia {
  kind: 'none' | 'image' | 'video' | 'frames';
  paths: string[];
}

export function validateUpstream(raw: unknown, index: number): { problems: Problem[]; sample?: UpstreamSample; media?: UpstreamMedia } {
  const problems: Problem[] = [];
  const err = (code: string, message: string, detail?: Record<string, unknown>) =>
    problems.push({ severity: 'error', code, sample: index, message, detail });
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    err('bad-sample', `sample ${index} is not a JSON object`);
    return { problems };
  }
  const s = raw as UpstreamSample;
  if (!Array.isArray(s.conversations) || s.conversations.length === 0) {
    err('bad-sample', `sample ${index} has no "conversations" list`);
    return { problems };
  }
  s.conversations.forEach((t, i) => {
    if (typeof t !== 'object' || t === null || !FROMS.has((t as { from?: string }).from ?? '') || typeof (t as { value?: unknown }).value !== 'string') {
      err('bad-turn', `sample ${index}, turn ${i}: needs "from" (system, human, gpt or ignored_gpt) and a string "value"`, { turn: i });
    }
  });
  if (problems.length > 0) return { problems };
  checkOrder(s, index, err);

  const text = s.conversations.map((t) => t.value).join('\n');
  const pads = countOf(text, PAD_TOKEN);
  if (pads > 0) err('pad-token', `sample ${index} contains the pad token ${PAD_TOKEN} ${plural(pads, 'time')} in its text; the trainer refuses it`, { count: pads });
  s.conversations.forEach((t, i) => {
    if ((t.from === 'gpt' || t.from === 'ignored_gpt') && (t.value.includes(IMAGE_TAG) || t.value.includes(VIDEO_TAG))) {
      err('media-in-answer', `sample ${index}, turn ${i}: an answer holds a media tag; put images and videos in human turns`, { turn: i });
    }
  });

  const media = mediaOf(s, index, err);
  if (!media) return { problems };
  const images = countOf(text, IMAGE_TAG);
  const videos = countOf(text, VIDEO_TAG);
  if (images > 0 && videos > 0) {
    err('mixed-media', `sample ${index} has both ${IMAGE_TAG} and ${VIDEO_TAG} tags; one sample takes images or one video, never both`);
  } else if (media.kind === 'image' && images !== media.paths.length) {
    err('placeholder-count', `sample ${index} has ${plural(images, IMAGE_TAG + ' tag')} but ${plural(media.paths.length, 'image')}`, { tags: images, media: media.paths.length });
  } else if ((media.kind === 'video' || media.kind === 'frames') && (videos !== 1 || images !== 0)) {
    err('placeholder-count', `sample ${index} has a video but ${plural(videos, VIDEO_TAG + ' tag')}${images ? ` and ${plural(images, IMAGE_TAG + ' tag')}` : ''}; a video needs exactly one ${VIDEO_TAG}`, { tags: videos, media: 1 });
  } else if (media.kind === 'none' && images + videos > 0) {
    err('placeholder-count', `sample ${index} has ${plural(images + videos, 'media tag')} but no image or video`, { tags: images + videos, media: 0 });
  }
  return { problems, sample: s, media };
}

type Report = (code: string, message: string, detail?: Record<string, unknown>) => void;

function checkOrder(s: UpstreamSample, index: number, err: Report): void {
  const turns = s.conversations;
  let expect: 'human' | 'gpt' = 'human';
  turns.forEach((t, i) => {
    if (t.from === 'system') {
      if (i !== 0) err('turn-order', `sample ${index}, turn ${i}: a system turn may only come first`, { turn: i });
      return;
    }
    const kind = t.from === 'human' ? 'human' : 'gpt';
    if (kind !== expect) {
      err('turn-order', `sample ${index}, turn ${i}: expected a ${expect === 'human' ? 'human' : 'gpt or ignored_gpt'} turn, found ${t.from}`, { turn: i });
    }
    expect = kind === 'human' ? 'gpt' : 'human';
  });
  const last = turns[turns.length - 1];
  if (last.from !== 'gpt' && last.from !== 'ignored_gpt') err('turn-order', `sample ${index} ends with a ${last.from} turn; it must end with an answer (gpt)`);
}

function mediaOf(s: UpstreamSample, index: number, err: Report): UpstreamMedia | undefined {
  const fields = (['image', 'video', 'video_frames'] as const).filter((k) => s[k] !== undefined);
  if (fields.length > 1) {
    err('mixed-media', `sample ${index} has ${fields.join(' and ')}; one sample takes images or one video, never both`);
    return undefined;
  }
  const isPath = (p: unknown) => typeof p === 'string' && p !== '';
  if (s.image !== undefined) {
    const paths = typeof s.image === 'string' ? [s.image] : s.image;
    if (!Array.isArray(paths) || paths.length === 0 || !paths.every(isPath)) {
      err('bad-sample', `sample ${index}: "image" must be a path or a non-empty list of paths`);
      return undefined;
    }
    return { kind: 'image', paths };
  }
  if (s.video !== undefined) {
    if (!isPath(s.video)) {
      err('bad-sample', `sample ${index}: "video" must be one path`);
      return undefined;
    }
    return { kind: 'video', paths: [s.video] };
  }
  if (s.video_frames !== undefined) {
    if (!Array.isArray(s.video_frames) || s.video_frames.length === 0 || !s.video_frames.every(isPath)) {
      err('bad-sample', `sample ${index}: "video_frames" must be a non-empty list of frame paths`);
      return undefined;
    }
    return { kind: 'frames', paths: s.video_frames };
  }
  return { kind: 'none', paths: [] };
}

// Structure checks of one ms-swift sample (Custom-dataset.md, "messages" format): roles and their
// order, string contents, `loss` flags, media lists against tags, the pad token, and two things that
// make training differ from inference: `<image>\n` (the Ovis2.5 template already puts a newline after
// each medium, Ovis2_5Template.replace_tag → [-200, '\n'], so the text gets two) and answers without
// a think block (ovis answers after `<think>\n\n</think>\n\n` in non-thinking mode).
import { countOf, EMPTY_THINK, hasThinking, IMAGE_TAG, PAD_TOKEN, plural, tagsFollowedByNewline, VIDEO_TAG } from './placeholders.js';
import type { Problem, SwiftSample } from './types.js';

const ROLES = new Set(['system', 'user', 'assistant']);

export function validateSwift(raw: unknown, index: number): { problems: Problem[]; sample?: SwiftSample } {
  const problems: Problem[] = [];
  const report = (severity: 'error' | 'warning', code: string, message: string, detail?: Record<string, unknown>) =>
    problems.push({ severity, code, sample: index, message, detail });
  const err = (code: string, message: string, detail?: Record<string, unknown>) => report('error', code, message, detail);
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    err('bad-sample', `sample ${index} is not a JSON object`);
    return { problems };
  }
  const s = raw as SwiftSample;
  if (!Array.isArray(s.messages) || s.messages.length === 0) {
    err('bad-sample', `sample ${index} has no "messages" list`);
    return { problems };
  }
  s.messages.forEach((m, i) => {
    if (typeof m !== 'object' || m === null || !ROLES.has(m.role) || typeof m.content !== 'string') {
      err('bad-turn', `sample ${index}, message ${i}: needs "role" (system, user or assistant) and a string "content"`, { turn: i });
    } else if (m.loss !== undefined && typeof m.loss !== 'boolean') {
      err('bad-turn', `sample ${index}, message ${i}: "loss" must be true or false`, { turn: i });
    }
  });
  for (const key of ['images', 'videos'] as const) {
    const v = s[key];
    if (v !== undefined && !(Array.isArray(v) && v.every((p) => typeof p === 'string' && p !== ''))) {
      err('bad-sample', `sample ${index}: "${key}" must be a list of paths`);
    }
  }
  if (problems.length > 0) return { problems };
  checkOrder(s, index, err);

  const images = s.images ?? [];
  const videos = s.videos ?? [];
  const text = s.messages.map((m) => m.content).join('\n');
  const pads = countOf(text, PAD_TOKEN);
  if (pads > 0) err('pad-token', `sample ${index} contains the pad token ${PAD_TOKEN} ${plural(pads, 'time')} in its text; remove it`, { count: pads });
  s.messages.forEach((m, i) => {
    if (m.role !== 'user' && (m.content.includes(IMAGE_TAG) || m.content.includes(VIDEO_TAG))) {
      err('media-in-answer', `sample ${index}, message ${i}: a ${m.role} message holds a media tag; put images and videos in user messages`, { turn: i });
    }
    if (m.role === 'user' && tagsFollowedByNewline(m.content) > 0) {
      report('warning', 'image-newline', `sample ${index}, message ${i}: "<image>\\n" trains on two newlines after the image (ms-swift's Ovis2.5 template adds one itself); drop the newline (ovis data convert does)`, { turn: i });
    }
    if (m.role === 'assistant' && m.loss !== false && !hasThinking(m.content)) {
      report('warning', 'no-think-block', `sample ${index}, message ${i}: the answer has no think block, so the model learns to answer without ${JSON.stringify(EMPTY_THINK)} before it, unlike ovis in non-thinking mode; prefix it (ovis data convert does)`, { turn: i });
    }
  });
  const imageTags = countOf(text, IMAGE_TAG);
  const videoTags = countOf(text, VIDEO_TAG);
  if ((images.length > 0 || imageTags > 0) && (videos.length > 0 || videoTags > 0)) {
    err('mixed-media', `sample ${index} has images and a video; one sample takes images or one video, never both`);
  } else if (imageTags !== images.length) {
    err('placeholder-count', `sample ${index} has ${plural(imageTags, IMAGE_TAG + ' tag')} but ${plural(images.length, 'image')}`, { tags: imageTags, media: images.length });
  } else if (videoTags !== videos.length) {
    err('placeholder-count', `sample ${index} has ${plural(videoTags, VIDEO_TAG + ' tag')} but ${plural(videos.length, 'video')}`, { tags: videoTags, media: videos.length });
  } else if (videos.length > 1) {
    err('too-many-videos', `sample ${index} has ${videos.length} videos; ms-swift's Ovis2.5 template takes one video per sample`);
  }
  return { problems, sample: s };
}

function checkOrder(s: SwiftSample, index: number, err: (code: string, message: string, detail?: Record<string, unknown>) => void): void {
  let expect: 'user' | 'assistant' = 'user';
  s.messages.forEach((m, i) => {
    if (m.role === 'system') {
      if (i !== 0) err('turn-order', `sample ${index}, message ${i}: a system message may only come first`, { turn: i });
      return;
    }
    if (m.role !== expect) err('turn-order', `sample ${index}, message ${i}: expected a ${expect} message, found ${m.role}`, { turn: i });
    expect = m.role === 'user' ? 'assistant' : 'user';
  });
  const last = s.messages[s.messages.length - 1];
  if (last.role !== 'assistant') err('turn-order', `sample ${index} ends with a ${last.role} message; it must end with an assistant answer`);
}

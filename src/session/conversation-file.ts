// Writes a conversation in the format `--messages` reads (src/cli/messages-file.ts), so `ask --save`,
// `ask --continue`, `chat /save` and `chat --load` / `ask --messages` continue each other:
//   [{"role","content": "text" | [{"type":"text","text"}, {"type":"image","path"}, …], "reasoning_content"?}]
// Media are file paths (relative to the file when they sit under its folder, else absolute), or
// data: URLs for images that never were files (stdin, data URLs). Written atomically: a temp file in
// the same folder, flushed, then renamed over the target, so a crash never leaves half a file.
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeSync } from 'node:fs';
import { dirname, isAbsolute, relative, resolve, sep } from 'node:path';
import { randomBytes } from 'node:crypto';
import { InputError } from '../errors.js';
import { IMAGE_SENTINEL, VIDEO_SENTINEL, type ContentItem } from '../prompt/index.js';
import type { MediaArg } from '../cli/media-args.js';
import type { Conversation } from './conversation.js';

type Part = { type: 'text'; text: string } | { type: 'image' | 'video'; path: string } | { type: 'image_url'; image_url: { url: string } };

export interface WriteResult {
  /** Messages whose inline <image>/<video> markers could not be kept exactly (see splitMarkers). */
  approximated: number;
}

export function writeConversationFile(path: string, conv: Conversation): WriteResult {
  const base = dirname(resolve(path));
  let next = 0;
  let approximated = 0;
  const takeMedium = (kind: 'image' | 'video'): Part => {
    const m = conv.media[next++];
    if (!m) throw new Error(`conversation has more ${kind} placeholders than media`);
    return mediumPart(m, base);
  };
  const out = conv.messages.map((m) => {
    const msg: Record<string, unknown> = { role: m.role };
    if (typeof m.content === 'string') {
      msg.content = m.content;
    } else {
      const parts: Part[] = [];
      for (const item of m.content) {
        if (item.type !== 'text') parts.push(takeMedium(item.type));
        else if (/[\uFDD0\uFDD1]/.test(item.text)) {
          const split = splitMarkers(item.text);
          if (!split.exact) approximated += 1;
          for (const p of split.items) parts.push(p.type === 'text' ? p : takeMedium(p.type));
        } else parts.push({ type: 'text', text: item.text });
      }
      msg.content = parts;
    }
    if (m.role === 'assistant' && m.reasoning) msg.reasoning_content = m.reasoning;
    return msg;
  });
  writeAtomically(path, `${JSON.stringify(out, null, 2)}\n`);
  return { approximated };
}

/**
 * A prompt typed with inline markers ("First:\n<image>\nSecond:") as standard parts. The template
 * joins parts with "\n", so one newline on each side of a marker is dropped; `exact` is false when a
 * marker had text right beside it ("A<image>B"), which the parts can only give on its own line.
 */
export function splitMarkers(text: string): { items: ContentItem[]; exact: boolean } {
  const items: ContentItem[] = [];
  let exact = true;
  const chunks = text.split(/([\uFDD0\uFDD1])/);
  chunks.forEach((chunk, i) => {
    if (chunk === IMAGE_SENTINEL || chunk === VIDEO_SENTINEL) {
      items.push({ type: chunk === IMAGE_SENTINEL ? 'image' : 'video' });
      return;
    }
    let t = chunk;
    const afterMarker = i > 0;
    const beforeMarker = i < chunks.length - 1;
    if (afterMarker && t !== '') {
      if (t.startsWith('\n')) t = t.slice(1);
      else exact = false;
    }
    if (beforeMarker && t !== '') {
      if (t.endsWith('\n')) t = t.slice(0, -1);
      else exact = false;
    }
    if (t !== '') items.push({ type: 'text', text: t });
  });
  return { items, exact };
}

function mediumPart(m: MediaArg, base: string): Part {
  if (m.bytes) return { type: 'image_url', image_url: { url: `data:${mimeOf(m.bytes)};base64,${Buffer.from(m.bytes).toString('base64')}` } };
  if (m.source === '-') throw new Error('an image read from stdin must carry its bytes to be saved');
  const abs = resolve(m.source);
  const rel = relative(base, abs);
  const inside = rel !== '' && !rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel);
  return { type: m.kind, path: inside ? rel : abs };
}

/** The image type from the file's first bytes (for a data: URL). */
export function mimeOf(b: Uint8Array): string {
  const starts = (...sig: number[]) => sig.every((v, i) => b[i] === v);
  if (starts(0x89, 0x50, 0x4e, 0x47)) return 'image/png';
  if (starts(0xff, 0xd8, 0xff)) return 'image/jpeg';
  if (starts(0x47, 0x49, 0x46, 0x38)) return 'image/gif';
  if (starts(0x52, 0x49, 0x46, 0x46) && b[8] === 0x57 && b[9] === 0x45 && b[10] === 0x42 && b[11] === 0x50) return 'image/webp';
  if (starts(0x49, 0x49, 0x2a, 0x00) || starts(0x4d, 0x4d, 0x00, 0x2a)) return 'image/tiff';
  if (Buffer.from(b.subarray(4, 12)).toString('latin1').startsWith('ftypavi')) return 'image/avif';
  return 'application/octet-stream';
}

/** Replaces `path` with `text` in one rename; the old file stays whole until then. */
export function writeAtomically(path: string, text: string): void {
  const tmp = `${resolve(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    const fd = openSync(tmp, 'w', 0o644);
    try {
      writeSync(fd, text);
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new InputError(`cannot write ${path}: ${(e as Error).message}`);
  }
}

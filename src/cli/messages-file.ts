// `--messages FILE`: an earlier conversation as OpenAI-style JSON, so scripts can ask follow-ups.
//   [{"role":"system"|"user"|"assistant","content": "text" | [part, ...]}, ...]
// parts: {"type":"text","text"}, {"type":"image","path"}, {"type":"video","path"},
//        {"type":"image_url","image_url":{"url"}} / {"type":"video_url","video_url":{"url"}}
// where a url is a file path (relative to FILE), a file:// URL, or a data: URL (base64).
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { InputError } from '../errors.js';
import type { ContentItem } from '../prompt/index.js';
import type { Conversation, ConversationMessage } from '../session/conversation.js';
import type { MediaArg } from './media-args.js';

export type { Conversation } from '../session/conversation.js';

/** `label` names the option or command in messages (`--messages`, `--continue`, `/load`). */
export function readMessagesFile(path: string, label = '--messages'): Conversation {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (e) {
    throw new InputError(`${label} ${path}: cannot read it as JSON (${(e as Error).message})`);
  }
  if (!Array.isArray(raw)) throw new InputError(`${label} ${path}: expected a JSON array of {role, content} messages`);
  const base = dirname(path);
  const media: MediaArg[] = [];
  const messages = raw.map((m: any, i: number): ConversationMessage => {
    const where = `${label} ${path}: message ${i}`;
    if (!m || !['system', 'user', 'assistant'].includes(m.role)) throw new InputError(`${where} has role ${JSON.stringify(m?.role)}; use system, user or assistant`);
    // vLLM's field for an answer's thinking: kept for display and for saving the file again.
    const reasoning = m.role === 'assistant' && typeof m.reasoning_content === 'string' && m.reasoning_content ? { reasoning: m.reasoning_content } : {};
    if (typeof m.content === 'string') return { role: m.role, content: m.content, ...reasoning };
    if (!Array.isArray(m.content)) throw new InputError(`${where}: content must be a string or an array of parts`);
    if (m.role === 'assistant') {
      // The template renders list-form assistant turns as empty; join their text parts instead.
      return { role: 'assistant', content: m.content.map((p: any) => (p?.type === 'text' ? String(p.text ?? '') : '')).join(''), ...reasoning };
    }
    const content = m.content.map((p: any, j: number): ContentItem => partOf(p, `${where} part ${j}`, base, media));
    return { role: m.role, content };
  });
  return { messages, media };
}

function partOf(p: any, where: string, base: string, media: MediaArg[]): ContentItem {
  switch (p?.type) {
    case 'text':
      return { type: 'text', text: String(p.text ?? '') };
    case 'image':
    case 'video':
      media.push(mediaSource(p.kind ?? p.type, p.path ?? p.url ?? p[p.type], where, base));
      return { type: p.type };
    case 'image_url':
    case 'video_url': {
      const kind = p.type === 'image_url' ? 'image' : 'video';
      media.push(mediaSource(kind, p[p.type]?.url ?? p[p.type], where, base));
      return { type: kind };
    }
    default:
      throw new InputError(`${where} has type ${JSON.stringify(p?.type)}; use text, image, video, image_url or video_url`);
  }
}

function mediaSource(kind: 'image' | 'video', ref: unknown, where: string, base: string): MediaArg {
  if (typeof ref !== 'string' || !ref) throw new InputError(`${where}: a ${kind} part needs a path or url`);
  const data = /^data:[^;,]*;base64,(.*)$/s.exec(ref);
  if (data) {
    if (kind === 'video') throw new InputError(`${where}: videos must be files, not data: URLs`);
    return { kind, source: `${where} (data URL)`, bytes: Buffer.from(data[1], 'base64') };
  }
  const file = ref.startsWith('file://') ? fileURLToPath(ref) : ref;
  if (/^[a-z]+:\/\//i.test(file)) throw new InputError(`${where}: ${ref} is a remote URL; download it and give the file`);
  return { kind, source: isAbsolute(file) ? file : join(base, file) };
}

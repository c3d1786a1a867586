// OpenAI chat messages → the chat template's messages and the media they refer to, in order.
// `image_url` / `video_url` parts become `{type:'image'|'video'}` items in place, so the model's
// template lays them out as vLLM's processing of Ovis2.5 does (items joined by newlines).
import { hasSentinel, type ChatMessage, type ContentItem, type Role } from '../prompt/index.js';
import { badRequest } from './http-error.js';
import type { MediaRef } from './request-media.js';

const ROLES: Record<string, Role> = { system: 'system', developer: 'system', user: 'user', assistant: 'assistant' };

function text(value: unknown, where: string): string {
  if (typeof value !== 'string') throw badRequest(`${where} must be a string, got ${JSON.stringify(value)}`, where);
  // ovis reserves these noncharacters for media markers (src/prompt/user-content.ts).
  if (hasSentinel(value)) throw badRequest(`${where} contains U+FDD0 or U+FDD1, which ovis reserves for media markers; remove them`, where);
  return value;
}

function mediaUrl(part: Record<string, unknown>, key: 'image_url' | 'video_url', where: string): string {
  const v = part[key];
  const url = typeof v === 'string' ? v : typeof v === 'object' && v !== null ? (v as { url?: unknown }).url : undefined;
  if (typeof url !== 'string' || url === '') throw badRequest(`${where}.${key} must be {"url": "..."} (a data:, file: or http(s): URL)`, `${where}.${key}`);
  return url;
}

function parts(content: unknown[], role: Role, where: string, media: MediaRef[]): ContentItem[] {
  return content.map((raw, j): ContentItem => {
    const at = `${where}.content[${j}]`;
    if (typeof raw !== 'object' || raw === null) throw badRequest(`${at} must be an object such as {"type":"text","text":"..."}`, at);
    const part = raw as Record<string, unknown>;
    if (part.type === 'text') return { type: 'text', text: text(part.text, `${at}.text`) };
    if (part.type === 'image_url' || part.type === 'video_url') {
      // The template drops media of assistant turns; refusing them is clearer than losing them.
      if (role === 'assistant') throw badRequest(`${at}: an assistant message cannot carry media`, at);
      const kind = part.type === 'image_url' ? 'image' : 'video';
      media.push({ kind, url: mediaUrl(part, part.type, at), where: at });
      return { type: kind };
    }
    throw badRequest(`${at}.type ${JSON.stringify(part.type)} is not supported: use "text", "image_url" or "video_url"`, `${at}.type`);
  });
}

export function translateMessages(raw: unknown[]): { messages: ChatMessage[]; media: MediaRef[] } {
  const media: MediaRef[] = [];
  const messages = raw.map((m, i): ChatMessage => {
    const where = `messages[${i}]`;
    if (typeof m !== 'object' || m === null) throw badRequest(`${where} must be an object {role, content}`, where);
    const { role: given, content } = m as Record<string, unknown>;
    const role = ROLES[String(given)];
    if (!role) throw badRequest(`${where}.role ${JSON.stringify(given)} is not supported: use "system", "user" or "assistant"`, `${where}.role`);
    if (typeof content === 'string') return { role, content: text(content, `${where}.content`) };
    if (Array.isArray(content)) return { role, content: parts(content, role, where, media) };
    // An assistant turn of tool calls only has no content; without tools there is nothing to render.
    throw badRequest(`${where}.content must be a string or a list of parts`, `${where}.content`);
  });
  const last = messages.at(-1)!;
  if (last.role === 'assistant') throw badRequest('the last message is the assistant\'s: end with a user message for the model to answer', 'messages');
  return { messages, media };
}

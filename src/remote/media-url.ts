// A checked medium as a data: URL for an OpenAI-style content part: the file's own bytes (not the
// resized patches: the server resizes with its processor, told the pixel limits in
// mm_processor_kwargs), typed by their first bytes, else by the file's extension.
import { readFileSync } from 'node:fs';
import { extname } from 'node:path';
import type { Attached } from '../session/backend.js';

const BY_EXTENSION: Record<string, string> = {
  '.jpg': 'image/jpeg', '.jpeg': 'image/jpeg', '.png': 'image/png', '.webp': 'image/webp', '.gif': 'image/gif', '.tif': 'image/tiff', '.tiff': 'image/tiff', '.avif': 'image/avif',
  '.mp4': 'video/mp4', '.m4v': 'video/mp4', '.mkv': 'video/x-matroska', '.mov': 'video/quicktime', '.webm': 'video/webm', '.avi': 'video/x-msvideo',
  '.mpg': 'video/mpeg', '.mpeg': 'video/mpeg', '.wmv': 'video/x-ms-wmv', '.flv': 'video/x-flv', '.ts': 'video/mp2t', '.3gp': 'video/3gpp', '.ogv': 'video/ogg',
};

/** The image type from its signature (a file from stdin has no name to go by). */
export function sniffImageType(b: Uint8Array): string | undefined {
  const ascii = (from: number, to: number) => String.fromCharCode(...b.subarray(from, to));
  if (b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff) return 'image/jpeg';
  if (b[0] === 0x89 && ascii(1, 4) === 'PNG') return 'image/png';
  if (ascii(0, 4) === 'GIF8') return 'image/gif';
  if (ascii(0, 4) === 'RIFF' && ascii(8, 12) === 'WEBP') return 'image/webp';
  if (ascii(0, 4) === 'II*\0' || ascii(0, 4) === 'MM\0*') return 'image/tiff';
  if (ascii(4, 8) === 'ftyp' && /^avi[fs]$/.test(ascii(8, 12))) return 'image/avif';
  return undefined;
}

export function mediaBytes(a: Attached): Uint8Array {
  return a.arg.bytes ?? a.loaded.bytes ?? readFileSync(a.arg.source);
}

export function mediaDataURL(a: Attached): string {
  const bytes = mediaBytes(a);
  const type = (a.arg.kind === 'image' ? sniffImageType(bytes) : undefined) ?? BY_EXTENSION[extname(a.arg.source).toLowerCase()] ?? (a.arg.kind === 'image' ? 'image/png' : 'video/mp4');
  return `data:${type};base64,${Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64')}`;
}

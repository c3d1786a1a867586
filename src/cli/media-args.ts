// Which positional arguments are media: existing files with an image or video extension.
import { existsSync, statSync } from 'node:fs';
import { extname } from 'node:path';
import { InputError } from '../errors.js';

export const IMAGE_EXTENSIONS = ['.jpg', '.jpeg', '.png', '.webp', '.gif', '.tif', '.tiff', '.avif'];
export const VIDEO_EXTENSIONS = ['.mp4', '.mkv', '.mov', '.webm', '.avi', '.m4v', '.mpg', '.mpeg', '.wmv', '.flv', '.ts', '.3gp', '.ogv'];

export type MediaKindOf = 'image' | 'video';

export function mediaKindOfPath(path: string): MediaKindOf | undefined {
  const ext = extname(path).toLowerCase();
  if (IMAGE_EXTENSIONS.includes(ext)) return 'image';
  if (VIDEO_EXTENSIONS.includes(ext)) return 'video';
  return undefined;
}

export interface MediaArg {
  kind: MediaKindOf;
  /** A file path, '-' for an image on stdin, or a description when `bytes` holds the file. */
  source: string;
  /** The file's bytes when it did not come from a path (a data: URL). */
  bytes?: Uint8Array;
}

/**
 * Splits positionals into media files and prompt words, keeping each group's order. An argument
 * that looks like a media file (a media extension, no whitespace) but does not exist is an input
 * error: `ovis ask missing.jpg "What is written on the sign?"` must not answer without the image.
 */
export function splitPositionals(args: string[]): { media: MediaArg[]; words: string[] } {
  const media: MediaArg[] = [];
  const words: string[] = [];
  for (const a of args) {
    const kind = mediaKindOfPath(a);
    if (kind && existsSync(a) && statSync(a).isFile()) media.push({ kind, source: a });
    else if (kind && !/\s/.test(a)) {
      const what = existsSync(a) ? 'is not a file' : 'does not exist';
      throw new InputError(
        `${a} ${what}: it looks like ${kind === 'image' ? 'an image' : 'a video'} to attach. ` +
          `Check the path; to mean the name as text, put it in a quoted prompt with other words, e.g. ovis ask "what is ${a}?"`,
      );
    } else words.push(a);
  }
  return { media, words };
}

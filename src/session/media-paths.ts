// Paths to images and videos typed or pasted into a chat message, as Ollama's REPL finds them:
// a word ending in a media extension, plain, quoted ('…' or "…", as terminals paste dropped files),
// with backslash-escaped spaces (`My\ Photos/a.png`), `~/…` or a file:// URL. A word that names an
// existing file is attached and taken out of the text. One that looks like a path (quoted, or with
// a slash or `~`) but names no file is reported, so a typo is not silently sent as text; a bare
// name that does not exist (`what is a .png file`) stays text.
import { existsSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { isAbsolute, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { mediaKindOfPath, type MediaArg } from '../cli/media-args.js';

export interface FoundPaths {
  /** The message without the attached paths. */
  text: string;
  media: MediaArg[];
  /** Path-like words with a media extension that name no file, as typed (unquoted, unescaped). */
  missing: string[];
}

interface Word {
  start: number;
  end: number;
  value: string;
  quoted: boolean;
}

/** Whitespace-separated words; quotes group, a backslash escapes the next character. */
function words(text: string): Word[] {
  const out: Word[] = [];
  let i = 0;
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i])) i++;
    if (i >= text.length) break;
    const start = i;
    const q = text[i];
    if ((q === "'" || q === '"') && text.indexOf(q, i + 1) > i) {
      const close = text.indexOf(q, i + 1);
      out.push({ start, end: close + 1, value: text.slice(i + 1, close), quoted: true });
      i = close + 1;
      continue;
    }
    let value = '';
    while (i < text.length && !/\s/.test(text[i])) {
      if (text[i] === '\\' && i + 1 < text.length) {
        value += text[i + 1];
        i += 2;
      } else value += text[i++];
    }
    out.push({ start, end: i, value, quoted: false });
  }
  return out;
}

function expand(path: string, cwd: string, home: string): string {
  let p = path;
  if (p.startsWith('file://')) {
    try {
      p = fileURLToPath(p);
    } catch {
      return resolve(cwd, p);
    }
  }
  if (p === '~' || p.startsWith('~/')) p = home + p.slice(1);
  return isAbsolute(p) ? p : resolve(cwd, p);
}

/** A path as typed after /image: quotes and backslash escapes removed, `~` and file:// expanded. */
export function unquotePath(typed: string, cwd = process.cwd(), home = homedir()): string {
  const t = typed.trim();
  const quoted = /^(['"])(.*)\1$/s.exec(t);
  const raw = quoted ? quoted[2] : t.replace(/\\(.)/g, '$1');
  return expand(raw, cwd, home);
}

export function findMediaPaths(text: string, cwd = process.cwd(), home = homedir()): FoundPaths {
  const media: MediaArg[] = [];
  const missing: string[] = [];
  const cuts: Array<[number, number]> = [];
  for (const w of words(text)) {
    let value = w.value;
    let end = w.end;
    // Sentence punctuation after a plain path ("look at ~/a.png, please") is not part of it.
    if (!w.quoted) {
      const trail = /[.,;:!?)]+$/.exec(value);
      if (trail && mediaKindOfPath(value.slice(0, trail.index))) {
        value = value.slice(0, trail.index);
        end -= trail[0].length;
      }
    }
    const kind = mediaKindOfPath(value);
    if (!kind) continue;
    const path = expand(value, cwd, home);
    if (existsSync(path) && statSync(path).isFile()) {
      media.push({ kind, source: path });
      cuts.push([w.start, end]);
    } else if (w.quoted || value.includes('/') || value.startsWith('~')) {
      missing.push(value);
    }
  }
  return { text: cutOut(text, cuts), media, missing };
}

/** Removes the spans and the space each leaves doubled, keeping the rest of the text as typed. */
function cutOut(text: string, cuts: Array<[number, number]>): string {
  let out = text;
  for (const [s, e] of [...cuts].reverse()) {
    let start = s;
    let end = e;
    // Take one neighbouring space with the path, so "see a.png here" becomes "see here".
    if (out[end] === ' ') end += 1;
    else if (start > 0 && out[start - 1] === ' ') start -= 1;
    out = out.slice(0, start) + out.slice(end);
  }
  return out.trim();
}

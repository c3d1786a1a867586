// The chat's input: multi-line text with a cursor, and recall of earlier inputs. Pure state and
// transitions (no terminal): the Ink view renders it, tests drive it directly.
import type { Key } from './keys.js';

export interface EditorState {
  text: string;
  /** Cursor position in UTF-16 units of `text`. */
  cursor: number;
}

export const emptyEditor = (): EditorState => ({ text: '', cursor: 0 });

/** Earlier inputs, oldest first; `at` browses them (length = the input being typed). */
export class InputHistory {
  private at: number;
  private draft = '';

  constructor(readonly entries: string[] = [], private readonly max = 500) {
    this.at = entries.length;
  }

  add(entry: string): void {
    if (entry.trim() && this.entries.at(-1) !== entry) this.entries.push(entry);
    while (this.entries.length > this.max) this.entries.shift();
    this.at = this.entries.length;
  }

  /** The entry before (-1) or after (+1) the one shown; undefined at either end. */
  step(dir: -1 | 1, current: string): string | undefined {
    if (this.at === this.entries.length) this.draft = current;
    const next = this.at + dir;
    if (next < 0 || next > this.entries.length) return undefined;
    this.at = next;
    return next === this.entries.length ? this.draft : this.entries[next];
  }

  reset(): void {
    this.at = this.entries.length;
  }
}

const lineStart = (t: string, c: number) => t.lastIndexOf('\n', c - 1) + 1;
const lineEnd = (t: string, c: number) => {
  const e = t.indexOf('\n', c);
  return e < 0 ? t.length : e;
};

/** Steps over a whole code point (surrogate pairs move as one). */
function prevIndex(t: string, c: number): number {
  if (c <= 0) return 0;
  const low = t.charCodeAt(c - 1);
  return low >= 0xdc00 && low <= 0xdfff && c >= 2 ? c - 2 : c - 1;
}

function nextIndex(t: string, c: number): number {
  if (c >= t.length) return t.length;
  const high = t.charCodeAt(c);
  return high >= 0xd800 && high <= 0xdbff && c + 1 < t.length ? c + 2 : c + 1;
}

function wordLeft(t: string, c: number): number {
  let i = c;
  while (i > 0 && /\s/.test(t[i - 1])) i--;
  while (i > 0 && !/\s/.test(t[i - 1])) i--;
  return i;
}

function wordRight(t: string, c: number): number {
  let i = c;
  while (i < t.length && /\s/.test(t[i])) i++;
  while (i < t.length && !/\s/.test(t[i])) i++;
  return i;
}

/** Moves the cursor one line up or down, keeping its column; undefined on the first / last line. */
function verticalMove(s: EditorState, dir: -1 | 1): number | undefined {
  const { text: t, cursor: c } = s;
  const start = lineStart(t, c);
  const col = c - start;
  if (dir < 0) {
    if (start === 0) return undefined;
    const prevStart = lineStart(t, start - 1);
    return Math.min(prevStart + col, start - 1);
  }
  const end = lineEnd(t, c);
  if (end === t.length) return undefined;
  const nextStart = end + 1;
  return Math.min(nextStart + col, lineEnd(t, nextStart));
}

const insert = (s: EditorState, str: string): EditorState => ({ text: s.text.slice(0, s.cursor) + str + s.text.slice(s.cursor), cursor: s.cursor + str.length });
const cut = (s: EditorState, from: number, to: number, cursor: number): EditorState => ({ text: s.text.slice(0, from) + s.text.slice(to), cursor });

/**
 * The editor after `key`, or undefined when the key is not an edit (Enter, Ctrl+C, Ctrl+D, …:
 * the view decides). Up/Down move between lines, and at the first / last line recall history.
 */
export function edit(s: EditorState, key: Key, history?: InputHistory): EditorState | undefined {
  const { text: t, cursor: c } = s;
  switch (key.name) {
    case 'text':
      return insert(s, key.text);
    case 'paste':
      return insert(s, key.text.replace(/\t/g, '  '));
    case 'newline':
      return insert(s, '\n');
    case 'backspace':
      return c === 0 ? s : cut(s, prevIndex(t, c), c, prevIndex(t, c));
    case 'delete':
      return c === t.length ? s : cut(s, c, nextIndex(t, c), c);
    case 'left':
      return { text: t, cursor: prevIndex(t, c) };
    case 'right':
      return { text: t, cursor: nextIndex(t, c) };
    case 'home':
      return { text: t, cursor: lineStart(t, c) };
    case 'end':
      return { text: t, cursor: lineEnd(t, c) };
    case 'wordLeft':
      return { text: t, cursor: wordLeft(t, c) };
    case 'wordRight':
      return { text: t, cursor: wordRight(t, c) };
    case 'deleteWordLeft':
      return cut(s, wordLeft(t, c), c, wordLeft(t, c));
    case 'killToEnd':
      return cut(s, c, lineEnd(t, c) === c && c < t.length ? c + 1 : lineEnd(t, c), c);
    case 'killToStart': {
      // At the start of a line it takes the line break too, so repeated Ctrl+U clears a long input.
      const from = c > 0 && lineStart(t, c) === c ? c - 1 : lineStart(t, c);
      return cut(s, from, c, from);
    }
    case 'up':
    case 'down': {
      const dir = key.name === 'up' ? -1 : 1;
      const moved = verticalMove(s, dir);
      if (moved !== undefined) return { text: t, cursor: moved };
      const recalled = history?.step(dir, t);
      return recalled === undefined ? s : { text: recalled, cursor: recalled.length };
    }
    default:
      return undefined;
  }
}

// The input box as terminal rows: the editor's text hard-wrapped to the width after a 2-column
// prompt, the cursor's row and column, and the window of rows shown when the text is taller
// than the room it gets.
import stringWidth from 'string-width';
import type { EditorState } from './editor.js';

export const PROMPT = '› ';
export const CONTINUATION = '  ';

export interface InputLayout {
  /** Rows to draw, prompt included. */
  rows: string[];
  /** Cursor position within `rows` (column in terminal cells). */
  cursor: { row: number; col: number };
  /** Rows of the whole input hidden above / below the window. */
  hiddenAbove: number;
  hiddenBelow: number;
}

const segmenter = new Intl.Segmenter();

/** Hard-wraps one line at `width` cells by grapheme; returns rows with each row's start index in `line`. */
function wrapLine(line: string, width: number): Array<{ text: string; start: number }> {
  const rows: Array<{ text: string; start: number }> = [];
  let text = '';
  let start = 0;
  let cells = 0;
  for (const { segment, index } of segmenter.segment(line)) {
    const w = stringWidth(segment);
    if (cells + w > width && text !== '') {
      rows.push({ text, start });
      text = '';
      start = index;
      cells = 0;
    }
    text += segment;
    cells += w;
  }
  rows.push({ text, start });
  return rows;
}

export function layoutInput(editor: EditorState, width: number, maxRows: number): InputLayout {
  const inner = Math.max(1, width - PROMPT.length);
  const all: string[] = [];
  let cursor = { row: 0, col: 0 };
  let offset = 0;
  editor.text.split('\n').forEach((line, li) => {
    const rows = wrapLine(line, inner);
    rows.forEach((r, ri) => {
      const end = ri + 1 < rows.length ? rows[ri + 1].start : line.length;
      const at = editor.cursor - offset;
      // The cursor belongs to this row if it falls inside it, or at the end of the line's last row.
      if (at >= r.start && (at < end || (ri === rows.length - 1 && at === line.length))) {
        cursor = { row: all.length, col: PROMPT.length + stringWidth(line.slice(r.start, at)) };
      }
      all.push((li === 0 && ri === 0 ? PROMPT : CONTINUATION) + r.text);
    });
    offset += line.length + 1;
  });
  // The window follows the cursor.
  const room = Math.max(1, maxRows);
  let first = 0;
  if (all.length > room) first = Math.min(Math.max(0, cursor.row - room + 1), all.length - room);
  return {
    rows: all.slice(first, first + room),
    cursor: { row: cursor.row - first, col: Math.min(cursor.col, width - 1) },
    hiddenAbove: first,
    hiddenBelow: Math.max(0, all.length - first - room),
  };
}

// The chat's input editor: edits at the cursor, multi-line movement, and recall of earlier inputs
// (the text being typed comes back after browsing).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { edit, emptyEditor, InputHistory, type EditorState } from '../../src/ui/editor.js';
import type { Key } from '../../src/ui/keys.js';

const run = (keys: Key[], start: EditorState = emptyEditor(), h?: InputHistory) => keys.reduce((s, k) => edit(s, k, h) ?? s, start);
const t = (text: string): Key => ({ name: 'text', text });

test('typing, moving and deleting at the cursor', () => {
  const s = run([t('hello big world'), { name: 'wordLeft' }, { name: 'backspace' }, t('_'), { name: 'end' }, { name: 'deleteWordLeft' }]);
  assert.equal(s, { text: 'hello ', cursor: 6 });
  assert.equal(run([t('abc'), { name: 'home' }, { name: 'delete' }, { name: 'killToEnd' }]), { text: '', cursor: 0 });
});

test('Ctrl+U deletes to the start of the line, then the line break before it', () => {
  const s = run([t('one'), { name: 'newline' }, t('two'), { name: 'killToStart' }]);
  assert.equal(s, { text: 'one\n', cursor: 4 });
  assert.equal(run([{ name: 'killToStart' }, { name: 'killToStart' }], s), { text: '', cursor: 0 });
});

test('a surrogate pair is one step for the cursor and backspace', () => {
  const s = run([t('a🙂'), { name: 'left' }]);
  assert.is(s.cursor, 1);
  assert.equal(run([{ name: 'right' }, { name: 'backspace' }], s), { text: 'a', cursor: 1 });
});

test('newlines and pastes make several lines; Up/Down move between them keeping the column', () => {
  const s = run([t('first line'), { name: 'newline' }, { name: 'paste', text: 'ab\ncdef' }]);
  assert.equal(s, { text: 'first line\nab\ncdef', cursor: 18 });
  const up = run([{ name: 'up' }], s);
  assert.equal(up.cursor, 13); // column 2 of the 2-column line "ab" (its end)
  const up2 = run([{ name: 'up' }], up);
  assert.is(up2.cursor, 2);
  assert.is(run([{ name: 'down' }, { name: 'down' }], up2).cursor, 16);
});

test('Up on the first line recalls earlier inputs; Down comes back to the draft', () => {
  const h = new InputHistory(['one', 'two']);
  const s = run([t('draft'), { name: 'up' }], emptyEditor(), h);
  assert.equal(s, { text: 'two', cursor: 3 });
  const s2 = run([{ name: 'up' }, { name: 'up' }], s, h);
  assert.is(s2.text, 'one');
  assert.is(run([{ name: 'down' }, { name: 'down' }], s2, h).text, 'draft');
});

test('history skips blanks and repeats, and keeps at most its size', () => {
  const h = new InputHistory([], 2);
  for (const e of ['a', 'a', ' ', 'b', 'c']) h.add(e);
  assert.equal(h.entries, ['b', 'c']);
});

test('Enter, Ctrl+C and Ctrl+D are not edits (the view decides)', () => {
  for (const name of ['enter', 'interrupt', 'eof'] as const) assert.is(edit(emptyEditor(), { name }), undefined);
});

test.run();

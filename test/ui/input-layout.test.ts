// The input box as rows: hard wrap by terminal cells (wide characters take two), the cursor's
// row and column, and the window that follows the cursor in a tall input.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { layoutInput } from '../../src/ui/input-layout.js';

test('a line wraps at the width after the 2-column prompt; the cursor sits after the text', () => {
  const l = layoutInput({ text: 'abcdefghij', cursor: 10 }, 6, 10);
  assert.equal(l.rows, ['› abcd', '  efgh', '  ij']);
  assert.equal(l.cursor, { row: 2, col: 4 });
});

test('wide characters count two cells', () => {
  const l = layoutInput({ text: '日本語です', cursor: 2 }, 6, 10);
  assert.equal(l.rows, ['› 日本', '  語で', '  す']);
  assert.equal(l.cursor, { row: 1, col: 2 });
});

test('newlines start rows; a tall input shows the rows around the cursor', () => {
  const text = ['1', '2', '3', '4', '5'].join('\n');
  const l = layoutInput({ text, cursor: text.length }, 20, 3);
  assert.equal(l.rows, ['  3', '  4', '  5']);
  assert.is(l.hiddenAbove, 2);
  assert.equal(l.cursor, { row: 2, col: 3 });
  const top = layoutInput({ text, cursor: 0 }, 20, 3);
  assert.equal(top.rows, ['› 1', '  2', '  3']);
  assert.is(top.hiddenBelow, 2);
});

test.run();

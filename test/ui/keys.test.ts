// Raw terminal input → keys: Enter apart from newline keys, bracketed paste (also split across
// chunks), escape sequences split across chunks, control keys.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KeyParser, type Key } from '../../src/ui/keys.js';

const names = (keys: Key[]) => keys.map((k) => ('text' in k ? `${k.name}:${k.text}` : k.name));

test('Enter (CR) sends; Ctrl+J (LF) and Alt+Enter insert newlines', () => {
  const p = new KeyParser();
  assert.equal(names(p.push('hi\r')), ['text:hi', 'enter']);
  assert.equal(names(p.push('a\nb\x1b\r')), ['text:a', 'newline', 'text:b', 'newline']);
});

test('keys sent together stay separate inputs: a CR outside a paste is always Enter', () => {
  assert.equal(names(new KeyParser().push('/think on\rWhy?\r')), ['text:/think on', 'enter', 'text:Why?', 'enter']);
});

test('a bracketed paste keeps its newlines (CR, CRLF) and never sends, even split across chunks', () => {
  const p = new KeyParser();
  const keys = [...p.push('\x1b[200~line one\r\nline'), ...p.push(' two\rthree\x1b[20'), ...p.push('1~\r')];
  assert.equal(names(keys), ['paste:line one\nline two\nthree', 'enter']);
});

test('escape sequences split across chunks are held until complete', () => {
  const p = new KeyParser();
  assert.equal(names(p.push('\x1b')), []);
  assert.equal(names(p.push('[')), []);
  assert.equal(names(p.push('A\x1b[3~\x1b[1;5D')), ['up', 'delete', 'wordLeft']);
});

test('control keys: interrupt, eof, editing, thinking toggle; unknown controls are dropped', () => {
  assert.equal(names(new KeyParser().push('\x03\x04\x01\x05\x15\x0b\x17\x14\x0c\x7f\x07')), [
    'interrupt', 'eof', 'home', 'end', 'killToStart', 'killToEnd', 'deleteWordLeft', 'toggleThinking', 'redraw', 'backspace',
  ]);
});

test('unicode text passes through whole', () => {
  assert.equal(names(new KeyParser().push('日本語 🙂 é')), ['text:日本語 🙂 é']);
});

test.run();

// Which chat inputs are commands: /word with an argument; a message that begins with a path is
// a message.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { COMMANDS, helpLines, parseCommand } from '../../src/cli/chat-commands.js';

test('commands and their arguments', () => {
  assert.equal(parseCommand('/think on'), { name: 'think', arg: 'on' });
  assert.equal(parseCommand('  /SAVE  notes.json '), { name: 'save', arg: 'notes.json' });
  assert.equal(parseCommand('/system You are terse.\nAlways.'), { name: 'system', arg: 'You are terse.\nAlways.' });
  assert.equal(parseCommand('/retry'), { name: 'retry', arg: '' });
});

test('paths and text are messages', () => {
  assert.is(parseCommand('/home/me/photo.jpg what is this?'), undefined);
  assert.is(parseCommand('what does /retry do?'), undefined);
  assert.is(parseCommand('/'), undefined);
});

test('the help lists every command', () => {
  const help = helpLines(false).join('\n');
  for (const c of ['/image', '/video', '/think', '/budget', '/system', '/clear', '/retry', '/save', '/load', '/stats', '/help', '/exit']) assert.ok(help.includes(c), c);
  assert.ok(COMMANDS.length >= 12);
});

test.run();

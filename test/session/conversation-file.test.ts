// Saved conversations: what `--messages` reads back is what was written (messages, media as
// paths relative to the file or absolute, stdin images as data: URLs, thinking as
// reasoning_content), and a write replaces the file whole or not at all.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readMessagesFile } from '../../src/cli/messages-file.js';
import { buildUserContent } from '../../src/prompt/index.js';
import { mimeOf, splitMarkers, writeConversationFile } from '../../src/session/conversation-file.js';
import type { Conversation } from '../../src/session/conversation.js';

const dir = mkdtempSync(join(tmpdir(), 'ovis-conv-'));
test.after(() => rmSync(dir, { recursive: true, force: true }));
const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');

test('round trip: messages, thinking, media paths (relative inside the folder, absolute outside), data URLs', () => {
  mkdirSync(join(dir, 'pics'), { recursive: true });
  const conv: Conversation = {
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'Compare.' }] },
      { role: 'assistant', content: 'The left one.', reasoning: 'Looking at both.' },
      { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'And this?' }] },
    ],
    media: [{ kind: 'image', source: join(dir, 'pics', 'a.png') }, { kind: 'image', source: '/elsewhere/b.png' }, { kind: 'image', source: '-', bytes: png }],
  };
  const file = join(dir, 'conv.json');
  writeConversationFile(file, conv);
  const raw = JSON.parse(readFileSync(file, 'utf8'));
  assert.equal(raw[1].content[0], { type: 'image', path: join('pics', 'a.png') });
  assert.equal(raw[1].content[1], { type: 'image', path: '/elsewhere/b.png' });
  assert.is(raw[2].reasoning_content, 'Looking at both.');
  assert.ok(raw[3].content[0].image_url.url.startsWith('data:image/png;base64,'));
  const back = readMessagesFile(file);
  assert.equal(back.messages, conv.messages);
  assert.equal(back.media.map((m) => m.source).slice(0, 2), [join(dir, 'pics', 'a.png'), '/elsewhere/b.png']);
  assert.equal(Buffer.from(back.media[2].bytes!), png);
});

test('inline markers become parts; exact when each has its own line', () => {
  const exact = buildUserContent('First:\n<image>\nSecond:\n<image>\nWhich?', ['image', 'image']);
  const r = splitMarkers((exact[0] as { text: string }).text);
  assert.ok(r.exact);
  assert.equal(r.items, [{ type: 'text', text: 'First:' }, { type: 'image' }, { type: 'text', text: 'Second:' }, { type: 'image' }, { type: 'text', text: 'Which?' }]);
  const inline = buildUserContent('A<image>B', ['image']);
  assert.not.ok(splitMarkers((inline[0] as { text: string }).text).exact);
});

test('a write that cannot finish leaves what was there and no temp file', () => {
  // The rename fails (the target is a folder that is not empty): nothing is replaced or left over.
  const target = join(dir, 'taken');
  mkdirSync(join(target, 'inside'), { recursive: true });
  assert.throws(() => writeConversationFile(target, { messages: [{ role: 'user', content: 'x' }], media: [] }), /cannot write/);
  assert.equal(readdirSync(target), ['inside']);
  assert.equal(readdirSync(dir).filter((f) => f.endsWith('.tmp')), []);
});

test('a write replaces the file by rename: no temp files remain', () => {
  const file = join(dir, 'again.json');
  for (let i = 0; i < 3; i++) writeConversationFile(file, { messages: [{ role: 'user', content: `turn ${i}` }], media: [] });
  assert.equal(readdirSync(dir).filter((f) => f.includes('again')), ['again.json']);
  assert.is(JSON.parse(readFileSync(file, 'utf8'))[0].content, 'turn 2');
});

test('image types for data URLs come from the bytes', () => {
  assert.is(mimeOf(png), 'image/png');
  assert.is(mimeOf(Buffer.from('ffd8ffe0', 'hex')), 'image/jpeg');
  assert.is(mimeOf(Buffer.from('RIFF0000WEBP')), 'image/webp');
});

test.run();

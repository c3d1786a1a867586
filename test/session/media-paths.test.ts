// Media paths in a chat message, as a person types or pastes them.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findMediaPaths, unquotePath } from '../../src/session/media-paths.js';

const dir = mkdtempSync(join(tmpdir(), 'ovis-paths-'));
mkdirSync(join(dir, 'My Photos'));
for (const f of ['a.png', 'My Photos/b c.jpg', 'clip.mp4']) writeFileSync(join(dir, f), 'x');
const find = (text: string) => findMediaPaths(text, dir, dir);

test.after(() => rmSync(dir, { recursive: true, force: true }));

test('a plain relative path is attached and leaves the text', () => {
  const r = find('what is in a.png please');
  assert.equal(r.media, [{ kind: 'image', source: join(dir, 'a.png') }]);
  assert.is(r.text, 'what is in please');
});

test('quoted and backslash-escaped paths with spaces, ~ and file:// URLs', () => {
  assert.equal(find(`'My Photos/b c.jpg' describe`).media.map((m) => m.source), [join(dir, 'My Photos/b c.jpg')]);
  assert.equal(find('describe My\\ Photos/b\\ c.jpg').media.map((m) => m.source), [join(dir, 'My Photos/b c.jpg')]);
  assert.equal(find('"~/a.png"').media.map((m) => m.source), [join(dir, 'a.png')]);
  assert.equal(find(`${pathToFileURL(join(dir, 'a.png')).href} ?`).media.map((m) => m.source), [join(dir, 'a.png')]);
});

test('sentence punctuation after a path stays in the text; videos are videos', () => {
  const r = find('compare a.png, clip.mp4!');
  assert.equal(r.media.map((m) => m.kind), ['image', 'video']);
  assert.is(r.text, 'compare,!');
});

test('a path-like word naming no file is reported; a bare name is just text', () => {
  const r = find('see ./missing.png and "gone.jpg" but also photo.jpg');
  assert.equal(r.missing, ['./missing.png', 'gone.jpg']);
  assert.equal(r.media, []);
  assert.is(find('what is a .png file').missing.length, 0);
});

test('/image arguments lose quotes and escapes', () => {
  assert.is(unquotePath('"My Photos/b c.jpg"', dir, dir), join(dir, 'My Photos/b c.jpg'));
  assert.is(unquotePath('My\\ Photos/b\\ c.jpg', dir, dir), join(dir, 'My Photos/b c.jpg'));
  assert.is(unquotePath('~/a.png', dir, '/home/me'), '/home/me/a.png');
});

test.run();

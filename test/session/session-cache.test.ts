// What a new request may keep of the engine's cache: the longest common prefix, never half a
// medium, a medium only when it is the same one, and always one id left to prefill.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SessionCache } from '../../src/session/session-cache.js';

const img = (n: number) => [-301, ...Array(n).fill(-300), -302];
const ids = (...parts: number[][]) => Int32Array.from(parts.flat());
const A = { name: 'a' };
const B = { name: 'b' };

test('text: the common prefix, but at least one new id', () => {
  const c = new SessionCache();
  c.set(ids([1, 2, 3, 4, 5]), []);
  assert.is(c.keepFor(ids([1, 2, 3, 9, 9]), []), 3);
  assert.is(c.keepFor(ids([1, 2, 3, 4, 5]), []), 4);
  assert.is(c.keepFor(ids([1, 2, 3, 4, 5, 6, 7]), []), 5);
  assert.is(c.keepFor(ids([7]), []), 0);
});

test('a medium is kept whole when it is the same one, and not at all otherwise', () => {
  const c = new SessionCache();
  c.set(ids([1, 2], img(3), [5, 6]), [A]);
  assert.is(c.keepFor(ids([1, 2], img(3), [5, 7]), [A]), 8);
  assert.is(c.keepFor(ids([1, 2], img(3), [5, 7]), [B]), 2, 'same ids, another image: from its start');
  assert.is(c.keepFor(ids([1, 2], img(3)), [A]), 2, 'the prompt ends inside the medium: none of it (one id must stay new)');
});

test('truncate keeps what the engine certainly holds, and only media wholly before it', () => {
  const c = new SessionCache();
  c.set(ids([1], img(2), [3], img(2), [4]), [A, B]);
  c.truncate(6);
  assert.is(c.length, 6);
  assert.is(c.keepFor(ids([1], img(2), [3], img(2), [4]), [A, B]), 6);
  assert.is(SessionCache.mediaBefore(ids([1], img(2), [3], img(2)), 6), 1);
});

test('set with a length: the cache holds only what the engine kept', () => {
  const c = new SessionCache();
  c.set(ids([1, 2, 3, 4]), [], 2);
  assert.is(c.keepFor(ids([1, 2, 3, 4]), []), 2);
});

test.run();

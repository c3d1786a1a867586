// Which engine session a request gets: a conversation that continues gets its own session back
// (keep = the shared prefix); a prompt sharing only a few tokens gets a fresh one, so it does not
// truncate another conversation's cache; beyond the limit the least recently used idle session is
// closed in the engine; a restarted engine (new generation) holds nothing.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { SessionPool } from '../../src/server/session-pool.js';

/** What the pool asks of the engine: only closeSession, recorded here. */
const engine = () => {
  const closed: string[] = [];
  return { closed, closeSession: (name: string) => closed.push(name) };
};
const ids = (...v: number[]) => Int32Array.from(v);

test('a continued conversation gets its session back with its prefix kept', () => {
  const pool = new SessionPool(4);
  const e = engine();
  const a = pool.take(e, 1, ids(1, 2, 3, 4, 5), []);
  assert.is(a.keep, 0);
  a.finish(ids(1, 2, 3, 4, 5, 6, 7), [], 6);
  const b = pool.take(e, 1, ids(1, 2, 3, 4, 5, 6, 9, 10), []);
  assert.is(b.session, a.session);
  assert.is(b.keep, 6);
});

test('a few shared tokens do not take another conversation\'s session', () => {
  const pool = new SessionPool(4);
  const e = engine();
  const a = pool.take(e, 1, ids(1, 2, 3, 4, 5, 6, 7, 8), []);
  a.finish(ids(1, 2, 3, 4, 5, 6, 7, 8, 9), [], 8);
  const b = pool.take(e, 1, ids(1, 2, 30, 40), []);
  assert.is.not(b.session, a.session);
  assert.is(b.keep, 0);
});

test('a busy session is never shared; a failed request keeps only what is certain', () => {
  const pool = new SessionPool(4);
  const e = engine();
  const a = pool.take(e, 1, ids(1, 2, 3), []);
  const b = pool.take(e, 1, ids(1, 2, 3), []);
  assert.is.not(a.session, b.session);
  a.finish(ids(1, 2, 3, 4), [], 3);
  b.fail(true);
  const c = pool.take(e, 1, ids(1, 2, 3, 4, 5), []);
  assert.is(c.session, a.session);
  assert.is(c.keep, 3);
});

test('media blocks are kept only for the same medium (by key)', () => {
  const pool = new SessionPool(4);
  const e = engine();
  const prompt = ids(1, -301, -300, -302, 2, 3);
  const a = pool.take(e, 1, prompt, ['photo']);
  a.finish(prompt, ['photo'], 6);
  assert.is(pool.take(e, 1, ids(1, -301, -300, -302, 2, 3, 4), ['other']).keep, 0);
});

test('beyond the limit the least recently used idle session is closed; a new engine generation starts afresh', () => {
  const pool = new SessionPool(2);
  const e = engine();
  const first = pool.take(e, 1, ids(1, 1, 1), []);
  first.finish(ids(1, 1, 1), [], 3);
  const second = pool.take(e, 1, ids(2, 2, 2), []);
  second.finish(ids(2, 2, 2), [], 3);
  const third = pool.take(e, 1, ids(3, 3, 3), []);
  assert.equal(e.closed, [first.session]);
  third.finish(ids(3, 3, 3), [], 3);
  assert.is(pool.take(e, 2, ids(2, 2, 2, 2), []).keep, 0, 'the restarted engine holds no cache');
});

test.run();

// Admission: slots up to the batch, a bounded queue in arrival order, 429 beyond it, and a waiting
// request whose client goes away leaves the queue.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Admission } from '../../src/server/admission.js';
import { HttpError } from '../../src/server/http-error.js';

test('slots up to the limit, then a queue served in arrival order, then 429', async () => {
  const a = new Admission(1, 2);
  const first = await a.acquire();
  const order: number[] = [];
  const second = a.acquire().then((s) => (order.push(2), s));
  const third = a.acquire().then((s) => (order.push(3), s));
  assert.is(a.queued, 2);
  const refused = await a.acquire().catch((e) => e);
  assert.instance(refused, HttpError);
  assert.is(refused.status, 429);
  assert.is(refused.code, 'queue_full');
  first.release();
  (await second).release();
  (await third).release();
  assert.equal(order, [2, 3]);
  assert.is(a.running, 0);
});

test('releasing twice frees one slot only', async () => {
  const a = new Admission(1, 0);
  const s = await a.acquire();
  s.release();
  s.release();
  assert.is(a.running, 0);
  await a.acquire();
  assert.is(a.running, 1);
});

test('a queued request whose client goes away leaves the queue (499)', async () => {
  const a = new Admission(1, 1);
  const held = await a.acquire();
  const ac = new AbortController();
  const waiting = a.acquire(ac.signal);
  ac.abort();
  const e = await waiting.catch((err) => err);
  assert.is(e.status, 499);
  assert.is(a.queued, 0);
  held.release();
  assert.is(a.running, 0);
});

test.run();

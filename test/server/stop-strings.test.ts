// The stop filter: text before a stop string passes, the stop string and what follows never do,
// even when it arrives split across tokens.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { StopFilter } from '../../src/server/stop-strings.js';

const run = (stops: string[], pieces: string[]) => {
  const f = new StopFilter(stops);
  let out = '';
  for (const p of pieces) out += f.push(p);
  return { out: out + f.flush(), stopped: f.stopped };
};

test('without stop strings everything passes', () => {
  assert.equal(run([], ['a', 'b']), { out: 'ab', stopped: false });
});

test('a stop string inside one piece cuts the text before it', () => {
  assert.equal(run(['END'], ['abcENDxyz', 'more']), { out: 'abc', stopped: true });
});

test('a stop string split across pieces is never sent, not even its start', () => {
  const f = new StopFilter(['STOP']);
  assert.is(f.push('hello S'), 'hello ');
  assert.is(f.push('TO'), '');
  assert.is(f.push('P and more'), '');
  assert.ok(f.stopped);
});

test('held-back text that turns out not to be a stop string is sent', () => {
  assert.equal(run(['STOP'], ['a ST', 'AY here']), { out: 'a STAY here', stopped: false });
});

test('of several stop strings the earliest in the text wins', () => {
  assert.equal(run(['b', 'a'], ['xxab']), { out: 'xx', stopped: true });
});

test.run();

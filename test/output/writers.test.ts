// The text writer splits thinking (stderr) from the answer (stdout) and strips them like the
// reference's chat(); the JSONL writer emits the documented event shapes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Writable } from 'node:stream';
import { JsonlWriter } from '../../src/output/jsonl-writer.js';
import { TextWriter } from '../../src/output/text-writer.js';
import { THINK_END, THINK_START, type TokenOut } from '../../src/session/turn.js';

function sink(): Writable & { text: string } {
  const w = new Writable({ write(chunk, _enc, cb) { w.text += chunk.toString(); cb(); } }) as Writable & { text: string };
  w.text = '';
  return w;
}

const tok = (id: number, text: string, channel: 'thinking' | 'answer'): TokenOut => ({ id, text, channel, logprob: -1 });

test('thinking goes to stderr and the answer to stdout, tags and outer whitespace stripped', () => {
  const out = sink();
  const err = sink();
  const w = new TextWriter(out, err);
  for (const t of [
    tok(THINK_START, '<think>', 'thinking'), tok(1, '\n', 'thinking'), tok(2, 'Let me', 'thinking'), tok(3, ' add.', 'thinking'),
    tok(4, '\n', 'thinking'), tok(THINK_END, '</think>', 'thinking'), tok(5, '\n\n', 'answer'), tok(6, '391', 'answer'),
    tok(7, ' is it.', 'answer'), tok(8, '\n', 'answer'),
  ]) w.token(t);
  w.end();
  assert.is(err.text, 'Let me add.\n');
  assert.is(out.text, '391 is it.\n');
});

test('inner whitespace is kept; trailing whitespace is held until more text comes', () => {
  const out = sink();
  const w = new TextWriter(out, sink());
  for (const t of [tok(1, 'a', 'answer'), tok(2, '  \n', 'answer'), tok(3, 'b', 'answer'), tok(4, ' \n\n', 'answer')]) w.token(t);
  assert.is(out.text, 'a  \nb');
  w.end();
  assert.is(out.text, 'a  \nb\n');
});

test('no answer text prints nothing, not even a newline', () => {
  const out = sink();
  const w = new TextWriter(out, sink());
  w.token(tok(151645, '', 'answer'));
  w.end();
  assert.is(out.text, '');
});

test('JSON lines: token events (with top_logprobs when present) and the done event', () => {
  const out = sink();
  const w = new JsonlWriter(out);
  w.token({ ...tok(9, 'x', 'answer'), top: [{ id: 9, text: 'x', logprob: -0.5 }] });
  w.token(tok(10, 'y', 'thinking'));
  w.done({ id: 1, finish_reason: 'stop', prompt_tokens: 3, cached_tokens: 2, completion_tokens: 2, timings: { vision_ms: 0, prefill_ms: 1, first_token_ms: 2, decode_ms: 3, total_ms: 4 } });
  const lines = out.text.trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(lines[0], { type: 'token', id: 9, text: 'x', channel: 'answer', logprob: -1, top_logprobs: [{ id: 9, text: 'x', logprob: -0.5 }] });
  assert.equal(lines[1], { type: 'token', id: 10, text: 'y', channel: 'thinking', logprob: -1 });
  assert.equal(lines[2], { type: 'done', finish_reason: 'stop', usage: { prompt_tokens: 5, completion_tokens: 2 }, timings: { vision_ms: 0, prefill_ms: 1, first_token_ms: 2, decode_ms: 3, total_ms: 4 } });
});

test.run();

// Streaming detokenizer: UTF-8 safe, and always the same text as decoding all ids at once.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { OvisTokenizer } from '../../src/prompt/tokenizer.js';
import { StreamDecoder } from '../../src/prompt/stream-decoder.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');
let tok: OvisTokenizer;
test.before(async () => {
  tok = await OvisTokenizer.load(FIXTURE);
});

function stream(ids: number[], skipSpecial = true): string[] {
  const dec = new StreamDecoder(tok, { skipSpecial });
  const chunks = ids.map((id) => dec.push(id));
  chunks.push(dec.flush());
  return chunks;
}

test('a character split across tokens comes out whole, once complete', () => {
  // "€" is E2 82 AC; the byte-level tokens "â", "Ĥ", "¬" carry one byte each
  const ids = ['â', 'Ĥ', '¬'].map((t) => tok.tokenToId(t) as number);
  assert.equal(stream(ids), ['', '', '€', '']);
  // ZWJ family emoji: U+200D is split over tokens 378 ("âĢ") and 235 ("į")
  const family = tok.encodeText('👨‍👩‍👧');
  assert.equal(family, [145367, 378, 235, 145233, 378, 235, 145665]);
  const chunks = stream(family);
  assert.equal(chunks, ['👨', '', '\u200d', '👩', '', '\u200d', '👧', '']);
  assert.not.ok(chunks.some((c) => c.includes('\ufffd')));
});

test('invalid or truncated bytes become U+FFFD exactly where decode puts them', () => {
  const e2 = tok.tokenToId('â') as number;
  const a = tok.tokenToId('a') as number;
  assert.equal(stream([e2, a]), ['', '\ufffda', '']);
  assert.equal(stream([a, e2]), ['a', '', '\ufffd']);
  assert.is(stream([145367, 378]).join(''), tok.decode([145367, 378]));
});

test('special tokens are skipped (or kept); <think> and </think> always stay', () => {
  const ids = [151644, 872, 198, 151667, 271, 151668, 271, 9707, 151645, 151643];
  assert.is(stream(ids).join(''), 'user\n<think>\n\n</think>\n\nHello');
  assert.is(stream(ids, false).join(''), '<|im_start|>user\n<think>\n\n</think>\n\nHello<|im_end|><|endoftext|>');
  // a skipped special token between the halves of a character does not break it (as in decode)
  assert.is(stream([145367, 378, 151645, 235]).join(''), '👨\u200d');
  // ids past the vocabulary (padding rows of the LM head) print nothing
  assert.equal(stream([151700, 9707]), ['', 'Hello', '']);
});

test('a leading U+FEFF is kept', () => {
  assert.is(stream(tok.encodeText('\ufeffhi')).join(''), '\ufeffhi');
});

test('random id sequences: streamed text always equals decode, with and without skipping', () => {
  let seed = 12345;
  const rand = (n: number): number => {
    seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
    return seed % n;
  };
  for (let i = 0; i < 400; i++) {
    const ids: number[] = [];
    const len = 1 + rand(12);
    for (let j = 0; j < len; j++) {
      const r = rand(100);
      // single-byte tokens (0..255) make broken and split UTF-8 likely; also added tokens and padding ids
      ids.push(r < 40 ? rand(256) : r < 55 ? 151643 + rand(26) : r < 58 ? 151669 + rand(267) : rand(151643));
    }
    for (const skip of [true, false]) {
      assert.is(stream(ids, skip).join(''), tok.decode(ids, { skipSpecial: skip }), `${skip} ${ids}`);
    }
  }
});

test('valid text never streams a replacement character, whatever the split', () => {
  const text = 'Grüße, 世界! 😀👍🏽 𝐚𝐛 ☴ लेकिन Ελληνικά \ufeff 👨‍👩‍👧 end';
  const ids = tok.encodeText(text);
  const chunks = stream(ids);
  assert.is(chunks.join(''), text);
  assert.not.ok(chunks.some((c) => c.includes('\ufffd')));
});

test('flush resets the decoder for reuse', () => {
  const dec = new StreamDecoder(tok);
  dec.push(tok.tokenToId('â') as number);
  assert.is(dec.flush(), '\ufffd');
  assert.is(dec.pushAll(tok.encodeText('ok')), 'ok');
  assert.is(dec.flush(), '');
});

test.run();

// The tokenizer wrapper against ids and strings produced by the Rust `tokenizers` crate (0.23.3, what the
// reference runs) on the fixture's real Qwen3 tokenizer.json.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { ModelError } from '../../src/errors.js';
import { OvisTokenizer } from '../../src/prompt/tokenizer.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');
let tok: OvisTokenizer;
test.before(async () => {
  tok = await OvisTokenizer.load(FIXTURE);
});

test('special token ids and flags follow model-spec §3.1', () => {
  assert.equal(tok.specialIds, { endOfText: 151643, imStart: 151644, imEnd: 151645, thinkStart: 151667, thinkEnd: 151668 });
  assert.is(tok.size, 151669);
  for (let id = 151643; id <= 151656; id++) assert.ok(tok.isSpecial(id), `${id} is special`);
  for (let id = 151657; id <= 151668; id++) assert.not.ok(tok.isSpecial(id), `${id} is not special`);
  assert.not.ok(tok.isSpecial(198));
});

test('handy ids from the spec, and no BOS', () => {
  assert.equal(tok.encodeText('\n'), [198]);
  assert.equal(tok.encodeText('\n\n'), [271]);
  assert.equal(tok.encodeText('user'), [872]);
  assert.equal(tok.encodeText('assistant'), [77091]);
  assert.equal(tok.encodeText('system'), [8948]);
  assert.equal(tok.encodeText('.\n'), [624]);
  assert.equal(tok.encodeText('Hello World'), [9707, 4337]);
  assert.equal(tok.encodeText(''), []);
  // The reason placeholders are split out before tokenising (trap 14).
  assert.equal(tok.encodeText('<image>\n'), [27, 1805, 397]);
});

// [text, ids from the Rust tokenizer]
const RUST_CASES: Array<[string, number[]]> = [
  ['x\u0085y', [87, 126, 227, 88]],
  ['\ufeffab\ufeff', [3225, 370, 3225]],
  ['a  \n\n  b ', [64, 18611, 220, 293, 220]],
  ["I'LL say 'S it's", [40, 6, 4086, 1977, 364, 50, 432, 594]],
  ['12345 \u00bd\u00b2', [16, 17, 18, 19, 20, 220, 26062, 29456]],
  ['中文😀 👨‍👩‍👧', [104811, 141334, 61804, 101, 378, 235, 145233, 378, 235, 145665]],
  ['e\u0301t\u00e9', [38783]], // NFC first: "e + combining acute" is "é"
  ['tab\there\r\nline\u3000x\u2028y', [6192, 197, 6739, 319, 1056, 22441, 87, 378, 101, 88]],
  ['<|im_start|>user\n<think>x</think><tool_call>', [151644, 872, 198, 151667, 87, 151668, 151657]],
  ['<|im_start', [27, 91, 318, 4906]],
];

test('encodeText matches the Rust tokenizer on edge cases (whitespace, NFC, added tokens in text)', () => {
  for (const [text, ids] of RUST_CASES) assert.equal(tok.encodeText(text), ids, JSON.stringify(text));
});

test('added tokens typed in text become single ids, even <|endoftext|>', () => {
  assert.equal(tok.encodeText('a<|im_end|>b'), [64, 151645, 65]);
  assert.equal(tok.encodeText('a<|endoftext|>b'), [64, 151643, 65]);
});

// [ids, decode keeping special tokens, decode skipping them] from the Rust tokenizer
const RUST_DECODES: Array<[number[], string, string]> = [
  [[145367, 378], '👨\ufffd', '👨\ufffd'],
  // skipping a special token joins the bytes around it, so the split U+200D is whole again
  [[145367, 378, 151645, 235], '👨\ufffd<|im_end|>\ufffd', '👨\u200d'],
  [[226, 64], '\ufffda', '\ufffda'],
  [
    [151644, 872, 198, 151667, 271, 151668, 151645, 151643],
    '<|im_start|>user\n<think>\n\n</think><|im_end|><|endoftext|>',
    'user\n<think>\n\n</think>',
  ],
  [[9707, 151669, 151935, 4337], 'Hello World', 'Hello World'], // padding rows decode to nothing
  [[3225, 370, 3225], '\ufeffab\ufeff', '\ufeffab\ufeff'],
];

test('decode matches the Rust tokenizer, with and without skipping special tokens', () => {
  for (const [ids, keep, skip] of RUST_DECODES) {
    assert.is(tok.decode(ids), keep, `keep ${ids}`);
    assert.is(tok.decode(ids, { skipSpecial: true }), skip, `skip ${ids}`);
  }
});

test('tokenBytes gives the raw bytes behind a byte-level token', () => {
  assert.equal(Array.from(tok.tokenBytes(15056) ?? []), [0xe2, 0x82, 0xac]); // "€" = "âĤ¬"
  assert.equal(Array.from(tok.tokenBytes(151667) ?? []), Array.from(Buffer.from('<think>')));
  assert.is(tok.tokenBytes(151669), null);
  assert.is(tok.tokenBytes(-300), null);
});

test('a model directory without tokenizer.json is a ModelError', async () => {
  try {
    await OvisTokenizer.load(join(FIXTURE, 'inputs'));
    assert.unreachable('should have thrown');
  } catch (err) {
    assert.instance(err, ModelError);
    assert.match((err as Error).message, 'tokenizer.json');
  }
});

test.run();

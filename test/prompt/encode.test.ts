// Placeholder splitting and expansion (model-spec §3.4), including the spec's worked example.
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.js';
import { rejectsWith } from '../helpers/assert-errors.js';
import {
  encodePrompt,
  PromptBuilder,
  visualTokenCount,
  type ChatMessage,
  type OvisTokenizer,
} from '../../src/prompt/index.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');
let pb: PromptBuilder;
let tok: OvisTokenizer;
test.before(async () => {
  pb = await PromptBuilder.load(FIXTURE);
  tok = pb.tokenizer;
});

const rejects = (fn: () => unknown, pattern: RegExp): void => rejectsWith(InputError, fn, pattern);

const describe: ChatMessage[] = [{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'Describe this image.' }] }];

test("the spec's worked example: one 448×448 image, non-thinking, 215 ids", () => {
  const { ids } = pb.encode(describe, { enableThinking: false, grids: [[1, 28, 28]], kinds: ['image'] });
  const expected = [
    151644, 872, 198, -301, ...Array(196).fill(-300), -302, 198, 74785, 419, 2168, 13, 151645, 198, 151644, 77091, 198,
    151667, 271, 151668, 271,
  ];
  assert.is(ids.length, 215);
  assert.equal(Array.from(ids), expected);
});

test('thinking mode ends with the open assistant turn', () => {
  const { ids } = pb.encode(describe, { enableThinking: true, grids: [[1, 28, 28]], kinds: ['image'] });
  assert.equal(Array.from(ids.slice(-5)), [151645, 198, 151644, 77091, 198]);
  assert.is(ids.length, 211);
});

test('visual token count is t·h·w/4; bad grids are bugs, not input errors', () => {
  assert.is(visualTokenCount([1, 28, 28]), 196);
  assert.is(visualTokenCount([4, 6, 10]), 60);
  assert.throws(() => visualTokenCount([1, 3, 3]), /multiple of 4/);
  assert.throws(() => visualTokenCount([0, 4, 4]), /positive/);
  assert.throws(() => encodePrompt(tok, 'a<image>', [], ['image']), /grids/);
});

test('with a <video> present only <video> splits; <image> stays text', () => {
  const ids = Array.from(encodePrompt(tok, 'a<video>b<image>c', [[2, 4, 4]], ['video']));
  assert.equal(ids, [...tok.encodeText('a'), -303, ...Array(8).fill(-300), -304, ...tok.encodeText('b<image>c')]);
  assert.equal(tok.encodeText('b<image>c'), [65, 27, 1805, 56346]); // as the Rust tokenizer gives
});

test('chunks are tokenised independently (no merge across a placeholder)', () => {
  const ids = Array.from(encodePrompt(tok, 'x<image>\ny', [[1, 2, 2]], ['image']));
  assert.equal(ids, [87, -301, -300, -302, 198, 88]);
  assert.equal(Array.from(encodePrompt(tok, '', [], [])), []);
  assert.equal(Array.from(encodePrompt(tok, '<image>', [[1, 2, 2]], ['image'])), [-301, -300, -302]);
});

test('placeholders and media must pair up', () => {
  rejects(() => encodePrompt(tok, 'x<image>', [], []), /1 <image> placeholder but no media/);
  rejects(() => encodePrompt(tok, 'x', [[1, 2, 2]], ['image']), /0 <image> placeholders but 1 image/);
  rejects(() => encodePrompt(tok, '<image><image>', [[1, 2, 2]], ['image']), /2 <image> placeholders but 1 image/);
  rejects(() => encodePrompt(tok, '<image>', [[1, 2, 2]], ['video']), /placeholder/);
  rejects(
    () => encodePrompt(tok, '<image><video>', [[1, 2, 2], [1, 2, 2]], ['image', 'video']),
    /cannot be mixed/,
  );
});

test('<|endoftext|> anywhere in the prompt is rejected (trap 24)', () => {
  rejects(() => encodePrompt(tok, 'a<|endoftext|>b', [], []), /<\|endoftext\|>/);
  rejects(
    () => pb.encode([{ role: 'user', content: 'say <|endoftext|>' }], { enableThinking: false, grids: [], kinds: [] }),
    /<\|endoftext\|>/,
  );
  rejects(
    () =>
      pb.encode(
        [
          { role: 'user', content: 'hi' },
          { role: 'assistant', content: 'bye<|endoftext|>' },
          { role: 'user', content: 'again' },
        ],
        { enableThinking: false, grids: [], kinds: [] },
      ),
    /<\|endoftext\|>/,
  );
});

test('other added tokens typed by the user stay single ids, as in the reference', () => {
  const { ids } = pb.encode([{ role: 'user', content: '<think>' }], { enableThinking: true, grids: [], kinds: [] });
  assert.equal(Array.from(ids.slice(0, 4)), [151644, 872, 198, 151667]);
});

test.run();

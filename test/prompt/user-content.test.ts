// Prompt text + media → user turn (architecture.md, "Prompt assembly on the command line").
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.js';
import { rejectsWith } from '../helpers/assert-errors.js';
import {
  buildUserContent,
  IMAGE_END,
  IMAGE_START,
  mediaKindsOf,
  PromptBuilder,
  VIDEO_END,
  VIDEO_START,
  VISUAL_ATOM,
  type ChatMessage,
  type GridTHW,
  type MediaKind,
} from '../../src/prompt/index.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');
const TAIL = '<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n';
let pb: PromptBuilder;
test.before(async () => {
  pb = await PromptBuilder.load(FIXTURE);
});

const render = (text: string, media: MediaKind[]): string =>
  pb.render([{ role: 'user', content: buildUserContent(text, media) }], { enableThinking: false });

const rejects = (fn: () => unknown, pattern: RegExp): void => rejectsWith(InputError, fn, pattern);

test('without markers: media first, in order, then the text', () => {
  assert.equal(buildUserContent('Hi', ['image', 'image']), [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'Hi' }]);
  assert.equal(buildUserContent('', ['video']), [{ type: 'video' }]);
  assert.equal(buildUserContent('Hi', []), [{ type: 'text', text: 'Hi' }]);
  assert.equal(buildUserContent('', []), []);
  assert.is(render('Compare.', ['image', 'image']), `<|im_start|>user\n<image>\n<image>\nCompare.${TAIL}`);
});

test('with markers the text is kept byte for byte', () => {
  assert.is(
    render('First:\n<image>\nSecond:\n<image>\nWhich?', ['image', 'image']),
    `<|im_start|>user\nFirst:\n<image>\nSecond:\n<image>\nWhich?${TAIL}`,
  );
  assert.is(render('A<image>B', ['image']), `<|im_start|>user\nA<image>B${TAIL}`);
  assert.is(render('<video>', ['video']), `<|im_start|>user\n<video>${TAIL}`);
  assert.is(render('  <image>  \n\n', ['image']), `<|im_start|>user\n  <image>  \n\n${TAIL}`);
});

test('marked prompts encode with each placeholder expanded in place', () => {
  const grid: GridTHW = [1, 4, 6]; // 6 atoms
  const messages: ChatMessage[] = [{ role: 'user', content: buildUserContent('A<image>B', ['image']) }];
  const { ids } = pb.encode(messages, { enableThinking: false, grids: [grid], kinds: mediaKindsOf(messages) });
  const tok = pb.tokenizer;
  const expected = [
    ...tok.encodeText('<|im_start|>user\nA'),
    IMAGE_START,
    ...Array(6).fill(VISUAL_ATOM),
    IMAGE_END,
    ...tok.encodeText('B' + TAIL),
  ];
  assert.equal(Array.from(ids), expected);
  assert.equal(expected.slice(0, 4), [151644, 872, 198, 32]); // <|im_start|> user \n A

  const two: ChatMessage[] = [
    { role: 'user', content: buildUserContent('First:\n<image>\nSecond:\n<image>\nWhich?', ['image', 'image']) },
  ];
  const out = pb.encode(two, { enableThinking: false, grids: [grid, [1, 2, 2]], kinds: ['image', 'image'] });
  const arr = Array.from(out.ids);
  const ends = arr.flatMap((v, i) => (v === IMAGE_END ? [i] : []));
  assert.is(ends.length, 2);
  assert.is(arr.filter((v) => v === VISUAL_ATOM).length, 7);
  // the "\n" after each placeholder is its own token (198), not merged into ">\n" (397)
  for (const i of ends) assert.is(arr[i + 1], 198);
  assert.not.ok(arr.includes(397));
});

test('a video marker expands to video start/end', () => {
  const messages: ChatMessage[] = [{ role: 'user', content: buildUserContent('Clip: <video> What?', ['video']) }];
  const { text, ids } = pb.encode(messages, { enableThinking: false, grids: [[4, 4, 4]], kinds: ['video'] });
  assert.is(text, `<|im_start|>user\nClip: <video> What?${TAIL}`);
  const arr = Array.from(ids);
  const s = arr.indexOf(VIDEO_START);
  assert.ok(s > 0);
  assert.equal(arr.slice(s, s + 18), [VIDEO_START, ...Array(16).fill(VISUAL_ATOM), VIDEO_END]);
});

test('marker and media counts must match', () => {
  rejects(() => buildUserContent('<image> and <image>', ['image']), /has 2 <image>\/<video> markers but 1 image\/video file was given/);
  rejects(() => buildUserContent('<image>', []), /has 1 <image>\/<video> marker but no image or video was given/);
  rejects(() => buildUserContent('<image>', ['image', 'image']), /but 2 image\/video files were given; give one image or video per marker, in order, or remove the markers/);
});

test("a marker's kind must match its medium's", () => {
  rejects(() => buildUserContent('<image>', ['video']), /marker 1 .* <image> .* a video; use <video>/);
  rejects(() => buildUserContent('<image><video>', ['image', 'image']), /marker 2 .* <video> .* an image; use <image>/);
});

test('the reserved sentinel characters are refused in prompts and outside user turns', () => {
  rejects(() => buildUserContent('a\uFDD0b', []), /U\+FDD0/);
  rejects(
    () => pb.render([{ role: 'assistant', content: 'x\uFDD1' }], { enableThinking: true }),
    /assistant message .* U\+FDD0 or U\+FDD1/,
  );
});

test('mediaKindsOf lists media across turns in placeholder order', () => {
  const messages: ChatMessage[] = [
    { role: 'system', content: 'S' },
    { role: 'user', content: buildUserContent('x', ['image']) },
    { role: 'assistant', content: 'ok' },
    { role: 'user', content: buildUserContent('<image> then <image>', ['image', 'image']) },
  ];
  assert.equal(mediaKindsOf(messages), ['image', 'image', 'image']);
  assert.equal(mediaKindsOf([{ role: 'user', content: buildUserContent('<video>', ['video']) }]), ['video']);
  assert.equal(mediaKindsOf([{ role: 'user', content: 'typed <image> is deleted by the template' }]), []);
});

test.run();

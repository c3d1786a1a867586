// Exact token counts: what `ovis data check` counts for a sample equals what the CLI's own prompt
// building (chat template + tokenizer + the media code that sizes images and videos for `ovis ask`)
// produces for the same conversation, plus the answer; the trained ids are the answer and its
// <|im_end|>. Checked for both profiles, one image, several, and a video.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { checkDataset } from '../../src/data/check-dataset.js';
import { upstreamProfile, swiftProfile, type Profile } from '../../src/data/profiles.js';
import { loadDataset } from '../../src/data/read-dataset.js';
import type { SampleTokens } from '../../src/data/types.js';
import { prepareImage } from '../../src/media/image.js';
import { findFfmpeg } from '../../src/media/ffmpeg.js';
import { prepareVideo } from '../../src/media/video.js';
import type { ChatMessage, GridTHW } from '../../src/prompt/index.js';
import { fixturePrompts } from '../helpers/prompt.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { assistant, gpt, human, mediaFolder, user, writeSwift, writeUpstream } from './dataset-files.js';

const dir = tempDir('ovis-data-tokens-');
mediaFolder(dir);
const EMPTY_THINK = '<think>\n\n</think>\n\n';

async function counts(file: string, profile: Profile): Promise<SampleTokens[]> {
  const pb = await fixturePrompts();
  const out: SampleTokens[] = [];
  const summary = await checkDataset(await loadDataset(file), {
    profile,
    tokenizer: pb.tokenizer,
    onSample: (i, r) => {
      assert.equal(r.problems.filter((p) => p.severity === 'error'), [], `sample ${i}`);
      out[i] = r.tokens!;
    },
  });
  assert.is(summary.errors, 0);
  return out;
}

/** The CLI's ids for `messages` (thinking off: the prompt ends with the empty think block) + the answer. */
async function cliCount(messages: ChatMessage[], grids: GridTHW[], answer: string) {
  const pb = await fixturePrompts();
  const prompt = pb.encode(messages, { enableThinking: false, grids });
  const answerIds = pb.tokenizer.encodeText(`${answer}<|im_end|>`);
  const visual = prompt.ids.filter((id) => id < 0).length;
  return { total: prompt.ids.length + answerIds.length, visual, trained: answerIds.length };
}

const imageGrid = async (name: string, min: number, max: number): Promise<GridTHW> => [...(await prepareImage(join(dir, name), { minPixels: min, maxPixels: max })).grid] as GridTHW;

test('upstream, one image: total, visual and trained ids equal the CLI prompt plus the answer', async () => {
  const file = writeUpstream(dir, 'one.json', [
    { image: 'photo.jpg', conversations: [{ from: 'system', value: 'Be brief.' }, human('<image>\nWhat is this?'), gpt('A small photo.')] },
    { image: 'tall.png', conversations: [human('<image>\nAnd this?'), gpt('A tall one.')] },
  ]);
  const got = await counts(file, upstreamProfile());
  const p = upstreamProfile().singleImage;
  const want0 = await cliCount(
    [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] }],
    [await imageGrid('photo.jpg', p.min, p.max)],
    'A small photo.',
  );
  assert.equal({ total: got[0].total, visual: got[0].visual, trained: got[0].trained }, want0);
  assert.is(got[0].text + got[0].visual, got[0].total);
  const want1 = await cliCount([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'And this?' }] }], [await imageGrid('tall.png', p.min, p.max)], 'A tall one.');
  assert.equal({ total: got[1].total, visual: got[1].visual, trained: got[1].trained }, want1);
});

test('upstream, several images: each capped at the multi-image budget', async () => {
  const file = writeUpstream(dir, 'two.json', [{ image: ['photo.jpg', 'small.png'], conversations: [human('<image>\n<image>\nCompare.'), gpt('Alike.')] }]);
  const [got] = await counts(file, upstreamProfile());
  const m = upstreamProfile().multiImage;
  const want = await cliCount(
    [{ role: 'user', content: [{ type: 'image' }, { type: 'image' }, { type: 'text', text: 'Compare.' }] }],
    [await imageGrid('photo.jpg', m.min, m.max), await imageGrid('small.png', m.min, m.max)],
    'Alike.',
  );
  assert.equal({ total: got.total, visual: got.visual, trained: got.trained }, want);
  // the single-image budget would give the photo more atoms than the multi-image one does
  const single = await cliCount([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'x' }] }], [await imageGrid('photo.jpg', upstreamProfile().singleImage.min, upstreamProfile().singleImage.max)], 'x');
  const multi = await cliCount([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'x' }] }], [await imageGrid('photo.jpg', m.min, m.max)], 'x');
  assert.ok(single.visual > multi.visual, `${single.visual} > ${multi.visual}`);
});

test('ms-swift, one image: the same ids, the empty think block untrained', async () => {
  const file = writeSwift(dir, 'one.jsonl', [{ messages: [user('<image>What is this?'), assistant(`${EMPTY_THINK}A small photo.`)], images: ['photo.jpg'] }]);
  const profile = swiftProfile({});
  const [got] = await counts(file, profile);
  const want = await cliCount([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] }], [await imageGrid('photo.jpg', profile.singleImage.min, profile.singleImage.max)], 'A small photo.');
  assert.equal({ total: got.total, visual: got.visual, trained: got.trained }, want);
});

test('ms-swift pixel budgets follow MIN_PIXELS / MAX_PIXELS', async () => {
  const file = writeSwift(dir, 'env.jsonl', [{ messages: [user('<image>What is this?'), assistant(`${EMPTY_THINK}A photo.`)], images: ['photo.jpg'] }]);
  const [small] = await counts(file, swiftProfile({ MIN_PIXELS: String(64 * 64), MAX_PIXELS: String(256 * 256) }));
  const want = await cliCount([{ role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What is this?' }] }], [await imageGrid('photo.jpg', 64 * 64, 256 * 256)], 'A photo.');
  assert.is(small.total, want.total);
  assert.ok(small.visual <= 256 * 256 / 32 / 32 + 2);
});

test('a video: 8 frames sized like ovis ask sizes them, under both profiles', async () => {
  const ffmpeg = await findFfmpeg().catch(() => undefined);
  if (!ffmpeg) throw new Error('ffmpeg is needed for the video token count: install it or set OVIS_FFMPEG');
  const video = join(dir, 'clip.mkv');
  execFileSync(ffmpeg.path, ['-hide_banner', '-loglevel', 'error', '-y', '-framerate', '4', '-start_number', '0', '-i', join(dir, 'frame%d.png'), '-c:v', 'ffv1', video]);
  const up = writeUpstream(dir, 'video.json', [{ video: 'clip.mkv', conversations: [human('<video>\nWhat happens?'), gpt('Motion.')] }]);
  const sw = writeSwift(dir, 'video.jsonl', [{ messages: [user('<video>What happens?'), assistant(`${EMPTY_THINK}Motion.`)], videos: ['clip.mkv'] }]);
  const messages: ChatMessage[] = [{ role: 'user', content: [{ type: 'video' }, { type: 'text', text: 'What happens?' }] }];
  for (const [file, profile] of [[up, upstreamProfile()], [sw, swiftProfile({})]] as const) {
    const [got] = await counts(file, profile);
    const v = await prepareVideo(video, { frames: profile.frames, minPixels: profile.video.min, maxPixels: profile.video.max });
    const want = await cliCount(messages, [[...v.grid] as GridTHW], 'Motion.');
    assert.equal({ total: got.total, visual: got.visual, trained: got.trained }, want, profile.name);
  }
});

test('upstream: a gpt answer with its own think block is trained whole, ignored_gpt not at all', async () => {
  const pb = await fixturePrompts();
  const answer = '<think>\nLet me see.\n</think>\n\nYes.';
  const file = writeUpstream(dir, 'think.json', [{ conversations: [human('Sure?'), gpt(answer), human('Again?'), { from: 'ignored_gpt', value: 'No.' }] }]);
  const [got] = await counts(file, upstreamProfile());
  // trained: the answer and its <|im_end|>, nothing of the ignored turn; after a final ignored_gpt
  // turn upstream keeps the "\n" (it drops it only after a gpt turn)
  assert.is(got.trained, pb.tokenizer.encodeText(`${answer}<|im_end|>`).length);
  const text = `<|im_start|>user\nSure?<|im_end|>\n<|im_start|>assistant\n${answer}<|im_end|>\n<|im_start|>user\nAgain?<|im_end|>\n<|im_start|>assistant\nNo.<|im_end|>\n`;
  assert.is(got.total, pb.tokenizer.encodeText(text).length);
});

test.run();

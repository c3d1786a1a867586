// `ovis data convert`: upstream → ms-swift → upstream gives the dataset back (conversations exactly,
// media as the same files), with what differs fixed on the way: absolute paths, no newline after a
// tag, the empty think block written in, ignored_gpt as "loss": false. Frame lists are reported.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { gpt, human, mediaFolder, writeUpstream } from './dataset-files.js';

const dir = tempDir('ovis-data-convert-');
mediaFolder(dir);
const EMPTY_THINK = '<think>\n\n</think>\n\n';

const original = [
  { image: 'photo.jpg', conversations: [{ from: 'system', value: 'Be brief.' }, human('<image>\nWhat is this?'), gpt('A photo.')] },
  { image: ['small.png', 'tall.png'], conversations: [human('<image>\n<image>\nCompare.'), gpt('Different.'), human('More?'), { from: 'ignored_gpt', value: 'No.' }] },
  { conversations: [human('Think first.'), gpt('<think>\nHmm.\n</think>\n\nDone.')] },
  { video: 'clip.mp4', conversations: [human('<video>\nWhat happens?'), gpt('Motion.')] },
];

test('upstream → ms-swift: paths absolute, tags without their newline, empty think written, ignored_gpt as loss false', async () => {
  const up = writeUpstream(dir, 'up.json', original);
  const out = join(dir, 'sw.jsonl');
  const r = await runOvis(['data', 'convert', '--to', 'swift', up, out]);
  assert.is(r.code, 0, r.stderr);
  const sw = readFileSync(out, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  assert.equal(sw[0], {
    messages: [{ role: 'system', content: 'Be brief.' }, { role: 'user', content: '<image>What is this?' }, { role: 'assistant', content: `${EMPTY_THINK}A photo.` }],
    images: [join(dir, 'photo.jpg')],
  });
  assert.equal(sw[1].messages[3], { role: 'assistant', content: 'No.', loss: false });
  assert.equal(sw[1].images, [join(dir, 'small.png'), join(dir, 'tall.png')]);
  assert.is(sw[2].messages[1].content, '<think>\nHmm.\n</think>\n\nDone.', 'an answer with its own think block is kept as is');
  assert.equal(sw[3].videos, [join(dir, 'clip.mp4')]);
  // the converted file passes ms-swift's checks without a think-block or newline warning
  const check = await runOvis(['data', 'check', '-m', fixtureDir, '--json', out]);
  const codes = jsonLines(check.stdout).filter((l) => l.type === 'problem').map((p) => p.code);
  assert.equal(codes, ['missing-media'], check.stderr);
});

test('round trip upstream → ms-swift → upstream: the same conversations and the same files', async () => {
  const back = join(dir, 'back.json');
  const r = await runOvis(['data', 'convert', '--to', 'upstream', join(dir, 'sw.jsonl'), back]);
  assert.is(r.code, 0, r.stderr);
  const got = JSON.parse(readFileSync(back, 'utf8'));
  const info = JSON.parse(readFileSync(join(dir, 'back_datainfo.json'), 'utf8'));
  assert.equal(Object.keys(info), ['back']);
  assert.is(info.back.meta_file, back);
  assert.is(info.back.data_format, 'conversation');
  const imageDir = info.back.image_dir;
  assert.is(got.length, original.length);
  original.forEach((o, i) => {
    assert.equal(got[i].conversations, o.conversations, `sample ${i}`);
    const media = (s: any) => [s.image ?? [], s.video ?? []].flat();
    assert.equal(media(got[i]).map((p: string) => resolve(imageDir, p)), media(o).map((p: string) => join(dir, p)), `sample ${i} media`);
  });
});

test('video_frames cannot go to ms-swift: reported, left out, the rest converted', async () => {
  const up = writeUpstream(dir, 'frames.json', [
    { video_frames: ['frame0.png', 'frame1.png'], conversations: [human('<video>\nWhat?'), gpt('Frames.')] },
    { conversations: [human('Hi.'), gpt('Hello.')] },
  ]);
  const out = join(dir, 'frames.jsonl');
  const r = await runOvis(['data', 'convert', '--to', 'swift', '--json', up, out]);
  assert.is(r.code, 0, r.stderr);
  const lines = jsonLines(r.stdout);
  assert.is(lines[0].code, 'frames-unsupported');
  assert.is(lines[0].sample, 0);
  assert.equal(lines[1], { type: 'converted', to: 'swift', out, written: 1, skipped: 1 });
  assert.is(readFileSync(out, 'utf8').trim().split('\n').length, 1);
});

test('a sample with errors is left out, reported, and the exit status says so', async () => {
  const up = writeUpstream(dir, 'bad.json', [{ image: 'photo.jpg', conversations: [human('<image>\n<image>\nTwo?'), gpt('One.')] }, { conversations: [human('Hi.'), gpt('Hello.')] }]);
  const out = join(dir, 'bad.jsonl');
  const r = await runOvis(['data', 'convert', '--to', 'swift', up, out]);
  assert.is(r.code, 3);
  assert.match(r.stderr, /sample 0 has 2 <image> tags but 1 image/);
  assert.match(r.stderr, /wrote 1 samples .*1 left out/);
  const same = await runOvis(['data', 'convert', '--to', 'upstream', up, join(dir, 'x.json')]);
  assert.is(same.code, 2);
  assert.match(same.stderr, /already in upstream format/);
});

test.run();

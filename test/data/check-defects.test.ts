// `ovis data check` on datasets of both formats with every kind of defect, made here: each problem
// is reported with its sample index, its code and the right counts, on stdout as JSON lines with
// --json, and the exit status is 3 when there are errors, 0 when there are only warnings.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { assistant, gpt, human, mediaFolder, user, writeSwift, writeUpstream } from './dataset-files.js';

const dir = tempDir('ovis-data-check-');
mediaFolder(dir);
const long = 'word '.repeat(1200);

async function check(file: string, ...args: string[]) {
  const r = await runOvis(['data', 'check', '-m', fixtureDir, '--json', file, ...args]);
  const lines = jsonLines(r.stdout);
  return { ...r, problems: lines.filter((l) => l.type === 'problem'), samples: lines.filter((l) => l.type === 'sample'), last: lines[lines.length - 1] };
}

const codesOf = (problems: any[], sample: number) => problems.filter((p) => p.sample === sample).map((p) => p.code).sort();

test('upstream: each defect is reported with its sample index, code and counts', async () => {
  const file = writeUpstream(dir, 'upstream.json', [
    /* 0 fine */ { image: 'photo.jpg', conversations: [human('<image>\nWhat is it?'), gpt('A photo.')] },
    /* 1 two tags, one image */ { image: 'photo.jpg', conversations: [human('<image>\n<image>\nWhat?'), gpt('Two.')] },
    /* 2 missing image */ { image: ['photo.jpg', 'nowhere.png'], conversations: [human('<image>\n<image>\nCompare.'), gpt('Same.')] },
    /* 3 pad token */ { conversations: [human('Say it.'), gpt('Done<|endoftext|>')] },
    /* 4 over-long: cut, and the answer with it */ { conversations: [human(long), gpt('Short answer.')] },
    /* 5 corrupt image */ { image: 'corrupt.png', conversations: [human('<image>\nWhat?'), gpt('Noise.')] },
    /* 6 images and a video */ { image: 'photo.jpg', video: 'clip.mp4', conversations: [human('<image>\nWhat?'), gpt('Both.')] },
    /* 7 wrong order */ { conversations: [gpt('Hello.'), human('Hi.')] },
    /* 8 nothing trained */ { conversations: [human('Hi.'), { from: 'ignored_gpt', value: 'Ignored.' }] },
    /* 9 empty image file */ { image: 'empty.jpg', conversations: [human('<image>\nWhat?'), gpt('Empty.')] },
    /* 10 cut through the image block: only the answer is lost */ { image: 'photo.jpg', conversations: [human(`${'many '.repeat(900)}<image>\nWhat?`), gpt('Late.')] },
  ]);
  const r = await check(file, '--max-length', '1024');
  assert.is(r.code, 3, r.stderr);
  const p = r.problems;
  assert.equal(codesOf(p, 0), []);
  assert.equal(codesOf(p, 1), ['placeholder-count']);
  assert.equal(p.find((x) => x.sample === 1).detail, { tags: 2, media: 1 });
  assert.equal(codesOf(p, 2), ['missing-media']);
  assert.match(p.find((x) => x.sample === 2).message, /nowhere\.png does not exist/);
  assert.equal(codesOf(p, 3), ['pad-token']);
  assert.equal(codesOf(p, 4), ['no-trained-tokens', 'truncated']);
  const cut = p.find((x) => x.sample === 4);
  assert.is(cut.severity, 'warning');
  assert.is(cut.detail.kept, 1024);
  assert.ok(cut.detail.total > 1200, `${cut.detail.total} ids`);
  assert.equal(codesOf(p, 5), ['bad-media']);
  assert.equal(codesOf(p, 6), ['mixed-media']);
  assert.ok(codesOf(p, 7).every((c) => c === 'turn-order') && codesOf(p, 7).length >= 2);
  assert.equal(codesOf(p, 8), ['no-trained-tokens']);
  assert.equal(codesOf(p, 9), ['bad-media']);
  assert.match(p.find((x) => x.sample === 9).message, /empty/);
  const through = p.find((x) => x.sample === 10 && x.code === 'truncated');
  assert.ok(through, 'sample 10 is cut');
  assert.is(through.detail.media_dropped, 1);
  assert.ok(through.detail.kept < 1024 && through.detail.kept > 900, 'the cut backs off to before the image');
  assert.ok(codesOf(p, 10).includes('no-trained-tokens'));
  assert.is(r.last.type, 'error');
  assert.match(r.stderr, /checked 11 samples \(upstream format, upstream rules\)/);
});

test('upstream: the over-long sample with its answer kept is only a warning', async () => {
  const file = writeUpstream(dir, 'cut.json', [{ conversations: [human('Hello.'), gpt(long)] }]);
  const r = await check(file, '--max-length', '1000', '--per-sample');
  assert.is(r.code, 0, r.stderr);
  assert.equal(r.problems.map((x) => x.code), ['truncated']);
  assert.is(r.samples[0].total, r.problems[0].detail.total);
  assert.is(r.samples[0].text, 1000);
  // kept 1000 ids: "<|im_start|>user\nHello.<|im_end|>\n" and the assistant prefix are not trained
  assert.ok(r.samples[0].trained > 980 && r.samples[0].trained < 1000, `${r.samples[0].trained}`);
});

test('ms-swift: each defect is reported with its sample index, code and counts', async () => {
  const file = writeSwift(dir, 'swift.jsonl', [
    /* 0 fine */ { messages: [user('<image>What is it?'), assistant('<think>\n\n</think>\n\nA photo.')], images: [`${dir}/photo.jpg`] },
    /* 1 one tag, two images */ { messages: [user('<image>Compare.'), assistant('<think>\n\n</think>\n\nSame.')], images: ['photo.jpg', 'small.png'] },
    /* 2 missing image (relative to the file) */ { messages: [user('<image>What?'), assistant('<think>\n\n</think>\n\nX.')], images: ['gone.jpg'] },
    /* 3 pad token */ { messages: [user('Hi<|endoftext|>'), assistant('<think>\n\n</think>\n\nHello.')] },
    /* 4 over-long: dropped */ { messages: [user(long), assistant('<think>\n\n</think>\n\nOK.')] },
    /* 5 "<image>\n": two newlines */ { messages: [user('<image>\nWhat?'), assistant('<think>\n\n</think>\n\nA photo.')], images: ['photo.jpg'] },
    /* 6 no think block */ { messages: [user('Hi.'), assistant('Hello.')] },
    /* 7 nothing trained */ { messages: [user('Hi.'), assistant('Hello.', false)] },
    /* 8 an empty answer: the empty think block is not trained, its <|im_end|> is */ { messages: [user('Hi.'), assistant('<think>\n\n</think>\n\n')] },
  ], ['{"messages": [ not json']);
  const r = await check(file, '--max-length', '1024');
  assert.is(r.code, 3, r.stderr);
  const p = r.problems;
  assert.equal(codesOf(p, 0), []);
  assert.equal(codesOf(p, 1), ['placeholder-count']);
  assert.equal(p.find((x) => x.sample === 1).detail, { tags: 1, media: 2 });
  assert.equal(codesOf(p, 2), ['missing-media']);
  assert.equal(codesOf(p, 3), ['pad-token']);
  assert.equal(codesOf(p, 4), ['too-long']);
  assert.is(p.find((x) => x.sample === 4).detail.max, 1024);
  assert.ok(p.find((x) => x.sample === 4).detail.total > 1200);
  assert.equal(codesOf(p, 5), ['image-newline']);
  assert.equal(codesOf(p, 6), ['no-think-block']);
  assert.equal(codesOf(p, 7), ['no-trained-tokens']);
  assert.equal(codesOf(p, 8), []);
  assert.equal(codesOf(p, 9), ['bad-json']);
  assert.match(p.find((x) => x.sample === 9).message, /swift\.jsonl:10 is not JSON/);
});

test('ms-swift: two videos, or images with a video, are refused; warnings alone exit 0', async () => {
  const bad = writeSwift(dir, 'videos.jsonl', [
    { messages: [user('<video><video>Same?'), assistant('<think>\n\n</think>\n\nYes.')], videos: ['a.mp4', 'b.mp4'] },
    { messages: [user('<image><video>Same?'), assistant('<think>\n\n</think>\n\nYes.')], images: ['photo.jpg'], videos: ['a.mp4'] },
  ]);
  const r = await check(bad);
  assert.is(r.code, 3);
  assert.ok(codesOf(r.problems, 0).includes('too-many-videos'));
  assert.ok(codesOf(r.problems, 1).includes('mixed-media'));
  const warn = writeSwift(dir, 'warn.jsonl', [{ messages: [user('<image>\nWhat?'), assistant('Plain.')], images: ['photo.jpg'] }]);
  const w = await check(warn);
  assert.is(w.code, 0, w.stderr);
  assert.equal(codesOf(w.problems, 0), ['image-newline', 'no-think-block']);
  assert.match(w.stderr, /errors: 0 in 0 samples; warnings: 2/);
});

test('without --json: problems and the summary on stderr, stdout empty', async () => {
  const file = writeUpstream(dir, 'plain.json', [{ image: 'nowhere.png', conversations: [human('<image>\nWhat?'), gpt('X.')] }]);
  const r = await runOvis(['data', 'check', '-m', fixtureDir, file]);
  assert.is(r.code, 3);
  assert.is(r.stdout, '');
  assert.match(r.stderr, /error: sample 0: .*nowhere\.png does not exist/);
  assert.match(r.stderr, /errors: 1 in 1 samples \(missing-media 1\)/);
});

test('a datainfo file: meta_file and image_dir are taken from it', async () => {
  writeUpstream(dir, 'meta.json', [{ image: 'photo.jpg', conversations: [human('<image>\nWhat?'), gpt('A photo.')] }]);
  const info = writeUpstream(dir, 'info.json', { mine: { meta_file: 'meta.json', image_dir: dir, data_format: 'conversation' } } as never);
  const r = await check(info, '--per-sample');
  assert.is(r.code, 0, r.stderr);
  assert.is(r.samples.length, 1);
  const caption = writeUpstream(dir, 'caption.json', { c: { meta_file: 'meta.json', image_dir: dir, data_format: 'caption' } } as never);
  const c = await check(caption);
  assert.is(c.code, 3);
  assert.match(c.stderr, /data_format "caption"; ovis data checks conversation datasets only/);
});

test('worker threads (--jobs) report the same problems and counts, in the same order', async () => {
  const samples = Array.from({ length: 40 }, (_, i) =>
    i % 5 === 0 ? { image: 'nowhere.png', conversations: [human('<image>\nWhat?'), gpt('X.')] }
    : i % 3 === 0 ? { image: 'photo.jpg', conversations: [human('<image>\n<image>\nTwo?'), gpt('One.')] }
    : { image: i % 2 ? 'small.png' : 'tall.png', conversations: [human(`<image>\nSample ${i}?`), gpt(`Answer ${i}.`)] });
  const file = writeUpstream(dir, 'many.json', samples);
  const one = await check(file, '--per-sample', '--jobs', '1');
  const three = await check(file, '--per-sample', '--jobs', '3');
  assert.is(three.code, 3);
  assert.is(three.stdout, one.stdout);
  assert.is(one.samples.length, 40 - 8 - 11);
});

test.run();

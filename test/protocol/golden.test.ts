// Golden frames shared with the engine (native/tests/protocol_golden.rs): decode every file, and
// encode every client→engine message to exactly the file's bytes.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  decodeFrame, encodeCancel, encodeCloseSession, encodeGenerate, encodeHello, encodeLoadModel,
  encodeShutdown, decodeGenerateBody, FrameDecoder, FrameError, Kind,
} from '../../src/protocol/index.js';

const dir = join(import.meta.dirname, 'golden');
interface Case { name: string; kind: number; header: string; body: string | null; body_len: number }
const cases: Case[] = JSON.parse(readFileSync(join(dir, 'cases.json'), 'utf8'));
const bin = (name: string) => readFileSync(join(dir, `${name}.bin`));
const byName = (name: string) => cases.find((c) => c.name === name)!;

for (const c of cases) {
  test(`golden ${c.name} decodes to its kind, header and body`, () => {
    const f = decodeFrame(bin(c.name));
    assert.is(f.kind, c.kind);
    assert.equal(f.header, JSON.parse(c.header));
    assert.is(f.body.length, c.body_len);
    if (c.body !== null) assert.is(f.body.toString('hex'), c.body);
  });
}

test('client messages encode to the golden bytes', () => {
  assert.equal(encodeHello('ovis/0.1.0'), bin('hello'));
  assert.equal(encodeLoadModel(1, '/models/ovis', 'auto'), bin('load_model'));
  assert.equal(encodeLoadModel(1, '/models/ovis', 'auto', '/adapters/mine'), bin('load_model_lora'));
  assert.equal(encodeLoadModel(1, '/models/ovis', 'cpu', undefined, undefined, 'int8'), bin('load_model_int8'));
  // bf16 is the default and is not sent, so older engines keep working.
  assert.equal(encodeLoadModel(1, '/models/ovis', 'auto', undefined, undefined, 'bf16'), bin('load_model'));
  assert.equal(encodeCancel(2), bin('cancel'));
  assert.equal(encodeCloseSession('s1'), bin('close_session'));
  assert.equal(encodeShutdown(), bin('shutdown'));
  const text = JSON.parse(byName('generate_text').header);
  assert.equal(encodeGenerate(text, new Int32Array([151644, 872, 198])), bin('generate_text'));
});

test('generate with an image carries ids then f32 pixels', () => {
  const h = JSON.parse(byName('generate_image').header);
  const pixels = Float32Array.from({ length: 4 * 768 }, (_, i) => -1 + (i % 8) * 0.25);
  const ids = new Int32Array([-301, -300, -302, 198]);
  const frame = encodeGenerate(h, ids, [pixels]);
  assert.equal(frame, bin('generate_image'));
  const back = decodeGenerateBody(decodeFrame(frame).body, 4);
  assert.equal(Array.from(back.ids), Array.from(ids));
  assert.equal(Array.from(back.pixels), Array.from(pixels));
});

test('decoder reassembles frames split at every byte boundary', () => {
  const stream = Buffer.concat([bin('token'), bin('done'), bin('error_no_id')]);
  for (let cut = 1; cut < stream.length; cut += 7) {
    const d = new FrameDecoder();
    const frames = [...d.push(stream.subarray(0, cut)), ...d.push(stream.subarray(cut))];
    assert.equal(frames.map((f) => f.kind), [Kind.token, Kind.done, Kind.error]);
    assert.is(d.pending(), 0);
  }
});

test('frames before a bad one in the same chunk are kept on the error', () => {
  try {
    new FrameDecoder().push(Buffer.concat([bin('token'), Buffer.from([0, 0, 0, 0, 1])]));
  } catch (e) {
    assert.ok(e instanceof FrameError);
    assert.equal((e as FrameError).frames.map((f) => f.kind), [Kind.token]);
    return;
  }
  assert.unreachable('a zero length must throw');
});

test('decoder rejects a zero or huge length and a non-JSON header', () => {
  assert.throws(() => new FrameDecoder().push(Buffer.from([0, 0, 0, 0, 1])), (e: unknown) => e instanceof FrameError);
  assert.throws(() => new FrameDecoder().push(Buffer.from([0xff, 0xff, 0xff, 0x7f, 1])), (e: unknown) => e instanceof FrameError);
  const bad = Buffer.from([7, 0, 0, 0, 0x83, 2, 0, 0, 0, 0x7b, 0x7b]);
  assert.throws(() => new FrameDecoder().push(bad), (e: unknown) => e instanceof FrameError);
});

test.run();

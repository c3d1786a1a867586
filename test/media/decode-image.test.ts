// decodeImage: RGB conversion rules (model-spec.md §2.1), formats, EXIF orientation (our product
// choice), and the error paths. Expected pixels are never sharp's own decode: they are the known
// input (hand-written PNGs, raw buffers encoded losslessly) or values computed with Pillow.
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32, deflateSync } from 'node:zlib';
import sharp from 'sharp';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError } from '../../src/errors.js';
import { decodeImage, DEFAULT_MAX_INPUT_PIXELS, formatPixels } from '../../src/media/decode-image.js';
import { prepareImage } from '../../src/media/image.js';
import { removeTempDir, tempDir } from '../helpers/temp-dirs.js';

const FIXTURE_INPUTS = join(import.meta.dirname, '../fixtures/tiny-ovis2.5/inputs');
const dir = tempDir('ovis-media-');
test.after(() => removeTempDir(dir));

/** [h, w, c] bytes where every value is distinct-ish and non-zero. */
function ramp(w: number, h: number, c: number): Buffer {
  const b = Buffer.alloc(w * h * c);
  for (let i = 0; i < b.length; i++) b[i] = (i * 29 + 7) % 251 + 1;
  return b;
}

/**
 * Minimal 8-bit PNG writer, so the test controls exactly what is stored (sharp's encoder
 * converts grey to RGB and re-quantises palettes). colourType: 0 grey, 2 RGB, 3 palette,
 * 4 grey+alpha, 6 RGBA; `pixels` is [h, w, channels] (palette: indices).
 */
function png(width: number, height: number, colourType: 0 | 2 | 3 | 4 | 6, pixels: Uint8Array, extra: [string, Uint8Array][] = []): Buffer {
  const channels = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 }[colourType];
  const chunk = (type: string, data: Uint8Array) => {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])) >>> 0, 0);
    return Buffer.concat([head, data, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, colourType, 0, 0, 0], 8);
  const rows = Buffer.alloc(height * (1 + width * channels)); // filter byte 0 per row
  for (let y = 0; y < height; y++) rows.set(pixels.subarray(y * width * channels, (y + 1) * width * channels), y * (1 + width * channels) + 1);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    ...extra.map(([t, d]) => chunk(t, d)),
    chunk('IDAT', deflateSync(rows)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** Await a promise that must reject with an InputError whose message matches. */
async function rejectsInput(p: Promise<unknown>, pattern: RegExp): Promise<InputError> {
  try {
    await p;
  } catch (e) {
    assert.instance(e, InputError);
    assert.match((e as Error).message, pattern);
    assert.is((e as InputError).exitCode, 3);
    return e as InputError;
  }
  assert.unreachable('expected an InputError');
  throw new Error('unreachable');
}

test('RGBA PNG: alpha is dropped, transparent pixels keep their stored RGB', async () => {
  const raw = ramp(5, 4, 4);
  for (let i = 3; i < raw.length; i += 8) raw[i] = 0; // every other pixel fully transparent
  const img = await decodeImage(png(5, 4, 6, raw));
  assert.equal([img.width, img.height], [5, 4]);
  const want = new Uint8Array(5 * 4 * 3);
  for (let p = 0; p < 20; p++) want.set(raw.subarray(p * 4, p * 4 + 3), p * 3);
  assert.equal(Array.from(img.data), Array.from(want));
});

test('greyscale PNG (with and without alpha): R = G = B = L', async () => {
  const grey = ramp(6, 3, 1);
  const la = ramp(6, 3, 2);
  for (const [buf, ch, src] of [[png(6, 3, 0, grey), 1, grey], [png(6, 3, 4, la), 2, la]] as const) {
    const img = await decodeImage(buf);
    for (let p = 0; p < 18; p++) {
      const l = src[p * ch];
      assert.equal(Array.from(img.data.subarray(p * 3, p * 3 + 3)), [l, l, l], `${ch}-channel pixel ${p}`);
    }
  }
});

test('palette PNG: indices become palette RGB, palette transparency discarded', async () => {
  const palette = new Uint8Array([200, 10, 30, 5, 250, 60, 70, 80, 90, 255, 255, 1]);
  const alpha = new Uint8Array([255, 0, 128, 255]); // tRNS: entry 1 fully transparent
  const idx = new Uint8Array(8 * 8).map((_, p) => (p * 7) % 4);
  const img = await decodeImage(png(8, 8, 3, idx, [['PLTE', palette], ['tRNS', alpha]]));
  for (let p = 0; p < 64; p++) {
    const i = idx[p];
    assert.equal(Array.from(img.data.subarray(p * 3, p * 3 + 3)), Array.from(palette.subarray(i * 3, i * 3 + 3)), `pixel ${p}`);
  }
});

// The fixture's own files, decoded by Pillow 13.0 (`Image.open(f).convert("RGB").tobytes()`, run once
// outside this suite): [file, width, height, SHA-256 of the RGB bytes].
const PILLOW_DECODED: [string, number, number, string][] = [
  ['photo.jpg', 640, 480, 'ce359ad7b1002d5d4383fbd861387c560ad4e3d4f857b4a5c9cb816eda91650a'],
  ['small.png', 100, 60, '1ca369635c9eb9bf70288ce4c34ae7cb5946f69b822e44eb7af19f80ccebec38'],
  ['tall.png', 300, 900, 'de0aa402f415ce083a48f05a425d33223d4c5a02fa9f8ef5929c052bc7c2457e'],
];

test("the fixture's JPEG and PNGs decode to Pillow's pixels exactly", async () => {
  for (const [file, w, h, digest] of PILLOW_DECODED) {
    const img = await decodeImage(join(FIXTURE_INPUTS, file));
    assert.equal([img.width, img.height], [w, h], file);
    assert.is(createHash('sha256').update(img.data).digest('hex'), digest, `${file}: decoded pixels differ from Pillow's`);
  }
});

// An 8×8 Adobe CMYK JPEG and Pillow 10.3's `Image.open(f).convert("RGB")` of it (hex RGB bytes).
const CMYK_JPEG = '/9j/7gAOQWRvYmUAZAAAAAAA/9sAQwABAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEB/8AAFAgACAAIBEMRAE0RAFkRAEsRAP/EABcAAAMBAAAAAAAAAAAAAAAAAAcICQr/xAAdEAACAwEBAQEBAAAAAAAAAAAFBgMEBwgCAQkU/9oADgRDAE0AWQBLAAA/ACV0NRVrpju+BCJLeXoXAO/fpNoKjnycoDaisQSYuFuIeKVjL1qgGIgQufK6iM6GpMQCQOHKjqY5IhTqQKrWNwlwLSYH/Ri69yNqL5W0gBuDjkua8jbKkvvz6BsodjjH8ENq1qhAXVDC9RcROiwPvRL2v6PSZivqaGUYuw+RAQyFP/WSrmMLvt+JYHi+QxBvtPf8r/BDs0qzOb05FvRJwNd2foz+rPUj3MwEoH02ys2r3sC0KdXB+pxS9E4P46p5Mq6UPggGbSPcA75YY7YW1AsDcgYLluJXpiYKw6MWC5pFj6i3Qpwe6Ea7EN+aTTI+fMde1BDXB1hUA6t5s+rlb//Z';
const CMYK_PILLOW_RGB =
  '012997b6ff043887e1f2065484dbfc104fbfdaff0258b0f5fe0b7ba9ff022e79d8ec04447cd2fc0a41b5d0ff0250a4effc0a719beeff246dd1e4013171c9fa' +
  '0333a7c6ff034798e9f80a6593eaff1b60cae7ff0767bef7012b9ab9ff033d8ce3f4075989e0fe1254c1ddff035db3f4ff0c7eaeff03337fdcef054a7fd6fd' +
  '0d46b9d4ff0253a8f1fd0a749ef1ff2872d4e7023875ccfa0538accaff02499deaf9096a96ecff1e65cceaff096ac2f8012e9fbffe044090e6f6085f8ce5fe1558c5';

test("CMYK JPEG: Pillow's naive CMYK → RGB, not an ICC conversion", async () => {
  const img = await decodeImage(Buffer.from(CMYK_JPEG, 'base64'));
  assert.equal([img.width, img.height], [8, 8]);
  assert.is(Buffer.from(img.data).toString('hex'), CMYK_PILLOW_RGB);
});

test('embedded ICC profile is ignored (stored values, as Pillow)', async () => {
  // The pixels are written by the hand PNG writer, so the stored values are known: ramp(8, 8, 3).
  // Only the profile (Display P3) comes from sharp, as bytes for an iCCP chunk.
  const profile = (await sharp({ create: { width: 1, height: 1, channels: 3, background: '#808080' } }).withIccProfile('p3').png().toBuffer()
    .then((b) => sharp(b).metadata())).icc!;
  assert.ok(profile.length > 100, 'sharp gave an ICC profile');
  const iccp = Buffer.concat([Buffer.from('Display P3\0\0', 'latin1'), deflateSync(profile)]); // name, NUL, method 0, zlib data
  const stored = ramp(8, 8, 3);
  const file = png(8, 8, 2, stored, [['iCCP', iccp]]);
  assert.ok((await sharp(file).metadata()).hasProfile, 'the file carries the profile');
  // a colour-managed decode would change the values: the profile matters for this image
  assert.not.equal(Array.from(await sharp(file).raw().toBuffer()), Array.from(stored));
  assert.equal(Array.from((await decodeImage(file)).data), Array.from(stored));
});

test('EXIF orientation is applied (product choice; the reference ignores it)', async () => {
  // 3 wide × 2 high, orientation 6 = displayed rotated 90° clockwise → 2 wide × 3 high
  const raw = Buffer.from([10, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0, 0, 50, 0, 0, 60, 0, 0]);
  const png = await sharp(raw, { raw: { width: 3, height: 2, channels: 3 } }).withMetadata({ orientation: 6 }).png().toBuffer();
  assert.is((await sharp(png).metadata()).orientation, 6);
  const img = await decodeImage(png);
  assert.equal([img.width, img.height], [2, 3]);
  // rotated clockwise: the top row reads bottom-left, top-left of the stored image
  assert.equal(Array.from(img.data.filter((_, i) => i % 3 === 0)), [40, 10, 50, 20, 60, 30]);
});

test('formats: WebP, GIF (first frame), TIFF, AVIF, and a file path', async () => {
  const raw = ramp(16, 8, 3);
  const src = { raw: { width: 16, height: 8, channels: 3 as const } };
  const webp = await sharp(raw, src).webp({ lossless: true }).toBuffer();
  assert.equal(Array.from((await decodeImage(webp)).data), Array.from(raw));
  const tiff = await sharp(raw, src).tiff({ compression: 'lzw' }).toBuffer();
  assert.equal(Array.from((await decodeImage(tiff)).data), Array.from(raw));
  const avif = await decodeImage(await sharp(raw, src).avif({ quality: 90 }).toBuffer());
  assert.equal([avif.width, avif.height, avif.format], [16, 8, 'heif']);
  // two-frame GIF: red then blue; only the first frame counts
  const frames = Buffer.alloc(4 * 8 * 3);
  for (let p = 0; p < 32; p++) frames.set(p < 16 ? [255, 0, 0] : [0, 0, 255], p * 3);
  const gif = await sharp(frames, { raw: { width: 4, height: 8, channels: 3, pageHeight: 4 } }).gif().toBuffer();
  assert.is((await sharp(gif).metadata()).pages, 2);
  const g = await decodeImage(gif);
  assert.equal([g.width, g.height], [4, 4]);
  for (let p = 0; p < 16; p++) assert.equal(Array.from(g.data.subarray(p * 3, p * 3 + 3)), [255, 0, 0]);
  const path = join(dir, 'img.webp');
  writeFileSync(path, webp);
  assert.equal(Array.from((await decodeImage(path)).data), Array.from(raw));
});

test('error: missing file, directory, empty file', async () => {
  await rejectsInput(decodeImage(join(dir, 'nope.png')), /cannot read image .*nope\.png: no such file/);
  await rejectsInput(decodeImage(dir), /directory/);
  const empty = join(dir, 'empty.png');
  writeFileSync(empty, '');
  await rejectsInput(decodeImage(empty), /empty\.png is empty/);
});

test('error: truncated JPEG, random bytes, unsupported format', async () => {
  const jpg = readFileSync(join(FIXTURE_INPUTS, 'photo.jpg'));
  const cut = join(dir, 'cut.jpg');
  writeFileSync(cut, jpg.subarray(0, jpg.length >> 1));
  await rejectsInput(decodeImage(cut), /cannot decode image .*cut\.jpg: .*corrupt, truncated/);
  const noise = Buffer.alloc(4096);
  for (let i = 0; i < noise.length; i++) noise[i] = (i * 7919 + 13) & 255;
  await rejectsInput(decodeImage(noise, { name: 'noise.bin' }), /cannot decode image noise\.bin/);
  const svg = Buffer.from('<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>');
  await rejectsInput(decodeImage(svg, { name: 'x.svg' }), /svg format.*convert it/);
});

test('error: decompression bomb (huge declared size; low configured limit)', async () => {
  // a valid 1×1 PNG whose IHDR claims 60000×60000 (3.6 gigapixels); only the header is read
  const bomb = Buffer.from(await sharp({ create: { width: 1, height: 1, channels: 3, background: '#000' } }).png().toBuffer());
  bomb.writeUInt32BE(60000, 16);
  bomb.writeUInt32BE(60000, 20);
  bomb.writeUInt32BE(crc32(bomb.subarray(12, 29)) >>> 0, 29); // IHDR's CRC over type + data
  await rejectsInput(decodeImage(bomb, { name: 'bomb.png' }), new RegExp(`bomb\\.png is 60000×60000 pixels \\(3600\\.0 megapixels\\), over the limit of ${formatPixels(DEFAULT_MAX_INPUT_PIXELS).replace('.', '\\.')}`));
  // small.png is 100×60 = 6000 pixels
  await rejectsInput(prepareImage(join(FIXTURE_INPUTS, 'small.png'), { maxInputPixels: 5000 }), /small\.png is 100×60 pixels \(6000 pixels\), over the limit of 5000 pixels/);
  assert.ok((await prepareImage(join(FIXTURE_INPUTS, 'small.png'), { maxInputPixels: 6000 })).pixels.length > 0);
});

test.run();

// Image file → interleaved RGB uint8 [height, width, 3] with sharp (libvips), matching Pillow's
// `Image.open(f).convert("RGB")` (model-spec.md §2.1) where that is a sound product choice:
//   * alpha is dropped, not composited: transparent pixels keep their stored RGB;
//   * greyscale → R=G=B; palette → palette RGB; CMYK → Pillow's naive formula;
//   * no colour management (the embedded ICC profile is ignored, as Pillow does);
//   * unlike the reference, EXIF orientation IS applied: a person means the picture as displayed.
// sharp's JPEG (libjpeg-turbo family, ISLOW, fancy upsampling) and PNG pixels equal Pillow's.
import { readFile } from 'node:fs/promises';
import sharp, { type Metadata, type OutputInfo } from 'sharp';
import { InputError, TooLargeInputError } from '../errors.js';

/** Decompression-bomb guard: largest decoded image accepted (width·height, pixels). Pillow's own
 * hard limit (2 × Image.MAX_IMAGE_PIXELS), so whatever the reference opens, ovis opens too. */
export const DEFAULT_MAX_INPUT_PIXELS = 178_956_970;

/** What sharp calls the formats we accept (AVIF arrives as "heif"). */
const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp', 'gif', 'tiff', 'heif']);
const FORMAT_LIST = 'JPEG, PNG, WebP, GIF, TIFF or AVIF';

export interface DecodeOptions {
  /** Reject images with more pixels than this (default DEFAULT_MAX_INPUT_PIXELS). */
  maxInputPixels?: number;
  /** Name used in error messages (default: the path, or "image" for a buffer). */
  name?: string;
}

export interface DecodedImage {
  /** [height, width, 3] RGB */
  data: Uint8Array;
  /** pixels, after EXIF orientation */
  width: number;
  height: number;
  /** sharp's format name, e.g. "jpeg" */
  format: string;
}

/** Decode an image file (path) or its bytes. Throws InputError for anything unusable. */
export async function decodeImage(source: string | Uint8Array, options: DecodeOptions = {}): Promise<DecodedImage> {
  const name = options.name ?? (typeof source === 'string' ? source : 'image');
  const maxPixels = options.maxInputPixels ?? DEFAULT_MAX_INPUT_PIXELS;
  const bytes = typeof source === 'string' ? await readImageFile(source, name) : source;
  if (bytes.length === 0) {
    throw new InputError(`image ${name} is empty (0 bytes); give a ${FORMAT_LIST} file`);
  }
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

  // Header only: format, declared size, colour space. Checked before any pixel is decoded.
  let meta: Metadata;
  try {
    meta = await sharp(input, { limitInputPixels: false }).metadata();
  } catch (err) {
    throw unreadable(name, err);
  }
  if (!ACCEPTED_FORMATS.has(meta.format)) {
    throw new InputError(`image ${name} is in ${meta.format} format, which ovis does not read; convert it to ${FORMAT_LIST}`);
  }
  const declared = (meta.width ?? 0) * (meta.pageHeight ?? meta.height ?? 0);
  if (maxPixels > 0 && declared > maxPixels) {
    throw tooLarge(name, meta.width, meta.pageHeight ?? meta.height, maxPixels);
  }

  const cmyk = meta.space === 'cmyk';
  let pipeline = sharp(input, {
    // a second guard inside libvips, in case the header above lied about a page
    limitInputPixels: maxPixels > 0 ? maxPixels : false,
    // truncated or corrupt pixel data is an error (Pillow raises too); mere warnings are not
    failOn: 'error',
    autoOrient: true,
    ignoreIcc: true,
    pages: 1,
  });
  // Without this, libvips converts CMYK through an ICC profile; Pillow uses a naive formula.
  pipeline = cmyk ? pipeline.pipelineColourspace('cmyk').toColourspace('cmyk') : pipeline.toColourspace('srgb');
  let raw: { data: Buffer; info: OutputInfo };
  try {
    raw = await pipeline.raw({ depth: 'uchar' }).toBuffer({ resolveWithObject: true });
  } catch (err) {
    if (/pixel limit/i.test(errorMessage(err))) throw tooLarge(name, meta.width, meta.height, maxPixels);
    throw unreadable(name, err);
  }
  const { width, height, channels } = raw.info;
  const data = cmyk ? cmykToRgb(raw.data, width * height, channels) : toRgb(raw.data, width * height, channels);
  return { data, width, height, format: meta.format };
}

async function readImageFile(path: string, name: string): Promise<Buffer> {
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why =
      code === 'ENOENT' ? 'no such file' :
      code === 'EACCES' || code === 'EPERM' ? 'permission denied' :
      code === 'EISDIR' ? 'it is a directory' :
      errorMessage(err);
    throw new InputError(`cannot read image ${name}: ${why}; check the path`, { cause: err });
  }
}

/** Keep the first three channels (drop alpha), or replicate grey (1 or 2 channels). */
function toRgb(src: Uint8Array, pixels: number, channels: number): Uint8Array {
  if (channels === 3) return new Uint8Array(src.buffer, src.byteOffset, pixels * 3);
  const out = new Uint8Array(pixels * 3);
  if (channels >= 3) {
    for (let i = 0, s = 0, o = 0; i < pixels; i++, s += channels, o += 3) {
      out[o] = src[s];
      out[o + 1] = src[s + 1];
      out[o + 2] = src[s + 2];
    }
  } else {
    for (let i = 0, s = 0, o = 0; i < pixels; i++, s += channels, o += 3) {
      out[o] = out[o + 1] = out[o + 2] = src[s];
    }
  }
  return out;
}

/** Pillow's cmyk2rgb: nk = 255 − K; R = nk − MULDIV255(C, nk) (likewise G, B). */
function cmykToRgb(src: Uint8Array, pixels: number, channels: number): Uint8Array {
  const out = new Uint8Array(pixels * 3);
  for (let i = 0, s = 0, o = 0; i < pixels; i++, s += channels, o += 3) {
    const nk = 255 - src[s + 3];
    for (let c = 0; c < 3; c++) {
      const t = src[s + c] * nk + 128;
      out[o + c] = nk - (((t >> 8) + t) >> 8);
    }
  }
  return out;
}

/** "12.0 megapixels", or "5000 pixels" below one megapixel. */
export function formatPixels(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(1)} megapixels` : `${n} pixels`;
}

function tooLarge(name: string, width: number | undefined, height: number | undefined, limit: number): InputError {
  const n = (width ?? 0) * (height ?? 0);
  return new TooLargeInputError(
    `image ${name} is ${width}×${height} pixels (${formatPixels(n)}), over the limit of ${formatPixels(limit)} ` +
      'for decoded images; shrink it first or raise the input pixel limit',
  );
}

function unreadable(name: string, err: unknown): InputError {
  return new InputError(
    `cannot decode image ${name}: it is corrupt, truncated or not a ${FORMAT_LIST} file ` +
      `(${errorMessage(err).trim()}); re-save or convert it and try again`,
    { cause: err },
  );
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

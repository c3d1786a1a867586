// Incremental reader for a stream of binary PPM (P6, maxval 255) images, which is what
// `ffmpeg -f image2pipe -c:v ppm -pix_fmt rgb24 -` writes. Each image carries its own size, so
// rotated or size-changing videos need no probing.

export interface RgbFrame {
  /** [height, width, 3] */
  data: Uint8Array;
  width: number;
  height: number;
}

export class PpmStreamReader {
  // Chunks not yet consumed, joined only when a whole image is there (joining on every 64 KiB
  // pipe chunk would copy a 4K frame hundreds of times).
  private chunks: Buffer[] = [];
  private length = 0;
  private header: { width: number; height: number; offset: number } | null = null;

  /** Called for every complete image, in stream order. */
  constructor(private readonly onFrame: (frame: RgbFrame) => void) {}

  push(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.length += chunk.length;
    for (;;) {
      if (this.header === null) {
        if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks)];
        this.header = this.length > 0 ? parseHeader(this.chunks[0]) : null;
        if (this.header === null) return; // need more bytes
      }
      const { width, height, offset } = this.header;
      const end = offset + width * height * 3;
      if (this.length < end) return;
      const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
      // copy out so the frame does not pin the larger joined buffer
      const data = new Uint8Array(all.subarray(offset, end));
      const rest = all.subarray(end);
      this.chunks = rest.length > 0 ? [rest] : [];
      this.length = rest.length;
      this.header = null;
      this.onFrame({ data, width, height });
    }
  }

  /** Bytes left over that do not form a whole image (0 after a clean stream). */
  get leftover(): number {
    return this.length;
  }
}

/** "P6" ws width ws height ws maxval, one whitespace byte, then pixels; null if incomplete. */
function parseHeader(buf: Buffer): { width: number; height: number; offset: number } | null {
  if (buf.length < 2) return null;
  if (buf[0] !== 0x50 || buf[1] !== 0x36) throw new Error('ffmpeg wrote something that is not a P6 PPM image');
  const fields: number[] = [];
  let i = 2;
  while (fields.length < 3) {
    while (i < buf.length && isSpace(buf[i])) i++;
    if (i < buf.length && buf[i] === 0x23) {
      while (i < buf.length && buf[i] !== 0x0a) i++; // comment line
      continue;
    }
    let v = 0;
    const start = i;
    while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) v = v * 10 + (buf[i++] - 0x30);
    if (i >= buf.length) return null;
    if (i === start) throw new Error('malformed PPM header from ffmpeg');
    fields.push(v);
  }
  if (fields[2] !== 255) throw new Error(`PPM maxval ${fields[2]} from ffmpeg; expected 255 (rgb24)`);
  return { width: fields[0], height: fields[1], offset: i + 1 };
}

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09;
}

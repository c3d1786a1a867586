// Frames (docs/protocol.md): u32 LE length of what follows, u8 kind, u32 LE header length,
// JSON header, raw body. The decoder is a state machine fed arbitrary chunks from a pipe.

export const MAX_FRAME = 1 << 30;

export interface Frame {
  kind: number;
  /** Parsed JSON header. */
  header: Record<string, unknown>;
  body: Buffer;
}

export class FrameError extends Error {
  /** Whole frames that arrived before the bad one, in the same chunk (still to be handled). */
  frames: Frame[] = [];
}

/** Encodes one frame; `header` is serialised compactly in its key order. */
export function encodeFrame(kind: number, header: object, body: Uint8Array = new Uint8Array(0)): Buffer {
  const h = Buffer.from(JSON.stringify(header), 'utf8');
  const len = 1 + 4 + h.length + body.byteLength;
  if (len > MAX_FRAME) throw new FrameError(`frame of ${len} bytes exceeds the ${MAX_FRAME}-byte limit`);
  const out = Buffer.allocUnsafe(4 + len);
  out.writeUInt32LE(len, 0);
  out.writeUInt8(kind, 4);
  out.writeUInt32LE(h.length, 5);
  h.copy(out, 9);
  Buffer.from(body.buffer, body.byteOffset, body.byteLength).copy(out, 9 + h.length);
  return out;
}

/** Parses a complete frame (length prefix included). */
export function decodeFrame(bytes: Buffer): Frame {
  const d = new FrameDecoder();
  const frames = d.push(bytes);
  if (frames.length !== 1 || d.pending() !== 0) throw new FrameError('expected exactly one whole frame');
  return frames[0];
}

/** Accumulates chunks and yields whole frames; throws FrameError on a frame it cannot parse. */
export class FrameDecoder {
  private chunks: Buffer[] = [];
  private buffered = 0;

  push(chunk: Buffer): Frame[] {
    this.chunks.push(chunk);
    this.buffered += chunk.length;
    const frames: Frame[] = [];
    try {
      for (;;) {
        if (this.buffered < 4) break;
        const head = this.peek(4);
        const len = head.readUInt32LE(0);
        if (len < 5 || len > MAX_FRAME) throw new FrameError(`bad frame length ${len}`);
        if (this.buffered < 4 + len) break;
        const whole = this.take(4 + len);
        frames.push(parsePayload(whole.subarray(4)));
      }
    } catch (e) {
      if (e instanceof FrameError) e.frames = frames;
      throw e;
    }
    return frames;
  }

  /** Bytes of an incomplete frame still waiting for the rest. */
  pending(): number {
    return this.buffered;
  }

  private peek(n: number): Buffer {
    if (this.chunks[0].length < n) this.chunks = [Buffer.concat(this.chunks)];
    return this.chunks[0].subarray(0, n);
  }

  private take(n: number): Buffer {
    const all = this.chunks.length === 1 ? this.chunks[0] : Buffer.concat(this.chunks);
    const out = all.subarray(0, n);
    const rest = all.subarray(n);
    this.chunks = rest.length ? [rest] : [];
    this.buffered = rest.length;
    return out;
  }
}

function parsePayload(p: Buffer): Frame {
  const kind = p.readUInt8(0);
  const hlen = p.readUInt32LE(1);
  if (hlen > p.length - 5) throw new FrameError(`frame kind 0x${kind.toString(16)}: header length ${hlen} exceeds the frame`);
  let header: unknown;
  try {
    header = JSON.parse(p.subarray(5, 5 + hlen).toString('utf8'));
  } catch (e) {
    throw new FrameError(`frame kind 0x${kind.toString(16)}: header is not JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw new FrameError(`frame kind 0x${kind.toString(16)}: header is not a JSON object`);
  }
  return { kind, header: header as Record<string, unknown>, body: Buffer.from(p.subarray(5 + hlen)) };
}

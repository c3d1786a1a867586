// Reads a .safetensors file (8-byte LE header length, JSON header, data blob) into typed arrays.
// Test-only: the reference fixture's expected tensors (f32, i64, u8) are loaded whole.
import { readFileSync } from 'node:fs';

export interface Tensor {
  dtype: string;
  shape: number[];
  data: Float32Array | BigInt64Array | Uint8Array | Uint16Array;
}

export function readSafetensors(path: string): Map<string, Tensor> {
  const buf = readFileSync(path);
  const headerLen = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const blobStart = 8 + headerLen;
  const out = new Map<string, Tensor>();
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const [b, e] = info.data_offsets;
    // copy so the typed array is aligned whatever the offset in the file
    const bytes = new Uint8Array(buf.subarray(blobStart + b, blobStart + e));
    let data: Tensor['data'];
    switch (info.dtype) {
      case 'F32': data = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4); break;
      case 'I64': data = new BigInt64Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 8); break;
      case 'U8': data = bytes; break;
      case 'BF16': data = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2); break;
      default: throw new Error(`unsupported dtype ${info.dtype} for ${name}`);
    }
    out.set(name, { dtype: info.dtype, shape: info.shape, data });
  }
  return out;
}

/** Integer tensor as plain numbers (ids, grids). */
export function toNumbers(t: Tensor): number[] {
  return Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

#!/usr/bin/env node
// A misbehaving engine for testing the CLI's handling of engine faults (FAKE_ENGINE_MODE):
//   crash-on-generate  handshake and load fine, then die with a message on stderr at generate
//   garbage            handshake fine, then write bytes that are not a frame
//   exit-at-start      exit before the handshake
//   gpu-fault          at generate: a device_error frame, then exit 75 (a device fault, as ovis-engine does)
//   gpu-oom            at generate: a device_error frame (out of memory), and go on serving
function frame(kind, header) {
  const h = Buffer.from(JSON.stringify(header));
  const out = Buffer.alloc(9 + h.length);
  out.writeUInt32LE(5 + h.length, 0);
  out.writeUInt8(kind, 4);
  out.writeUInt32LE(h.length, 5);
  h.copy(out, 9);
  return out;
}
const mode = process.env.FAKE_ENGINE_MODE ?? 'crash-on-generate';
if (mode === 'exit-at-start') {
  process.stderr.write('fake engine: cannot start (library missing)\n');
  process.exit(7);
}
let buf = Buffer.alloc(0);
process.stdin.on('data', (chunk) => {
  buf = Buffer.concat([buf, chunk]);
  while (buf.length >= 4 && buf.length >= 4 + buf.readUInt32LE(0)) {
    const len = buf.readUInt32LE(0);
    const kind = buf.readUInt8(4);
    const hlen = buf.readUInt32LE(5);
    const header = JSON.parse(buf.subarray(9, 9 + hlen).toString());
    buf = buf.subarray(4 + len);
    if (kind === 0x01) {
      const ok = frame(0x81, { protocol: 1, engine: 'fake', backend: 'cpu', device: 'fake', threads: 1 });
      // In garbage mode the bad bytes share one write with hello_ok, so they arrive in one chunk.
      process.stdout.write(mode === 'garbage' ? Buffer.concat([ok, Buffer.from([0, 0, 0, 0, 0xde, 0xad])]) : ok);
    } else if (kind === 0x02) {
      const info = { model_type: 'ovis2_5', backend: 'cpu', device: 'fake', llm: { hidden: 32, layers: 2, heads: 4, kv_heads: 2, head_dim: 16, intermediate: 96, vocab: 151936, tie_embeddings: true, max_positions: 40960 }, vit: { hidden: 48, layers: 2, heads: 2, patch: 16, hidden_stride: 2 }, visual_vocab: 1024, params: 1, weight_bytes: 2 };
      process.stdout.write(frame(0x82, { id: header.id, info }));
    } else if (kind === 0x03 && mode === 'gpu-fault') {
      const message = 'the GPU faulted: replaying the decode graph: CUDA_ERROR_ILLEGAL_ADDRESS (an illegal memory access was encountered); its CUDA context cannot be used again, so the engine exits with status 75 (start it again)';
      process.stderr.write(`ovis-engine: error device_error (request Some(${header.id})): ${message}\n`);
      process.stdout.write(frame(0x8f, { id: header.id, code: 'device_error', message }), () => process.exit(75));
    } else if (kind === 0x03 && mode === 'gpu-oom') {
      process.stdout.write(frame(0x8f, { id: header.id, code: 'device_error', message: 'cannot allocate 2.000 GiB on the GPU: DriverError(CUDA_ERROR_OUT_OF_MEMORY, "out of memory")' }));
    } else if (kind === 0x03) {
      process.stderr.write('fake engine: segmentation fault in the decoder\n');
      process.exit(139);
    } else if (kind === 0x06) {
      process.exit(0);
    }
  }
});
process.stdin.on('end', () => process.exit(0));

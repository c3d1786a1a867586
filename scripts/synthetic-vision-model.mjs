#!/usr/bin/env node
// Writes a model directory with Ovis2.5-2B's vision shapes (SigLIP2 ViT 27 × 1152/4304, visual head
// 4608 → 65532, VTE 65536 × 2048) and a small 2-layer decoder of the 2B's width, with random bf16
// weights and the fixture's tokenizer: `ovis ask --model DIR photo.jpg …` then runs the real vision
// path end to end at the released model's cost (answers are noise). ~2.1 GB on disk. Used to check
// the encode estimate against measured encodes (docs/performance.md, "Encode estimate").
//   node scripts/synthetic-vision-model.mjs DIR
import { copyFileSync, createWriteStream, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const out = process.argv[2];
if (!out) {
  process.stderr.write('usage: node scripts/synthetic-vision-model.mjs DIR\n');
  process.exit(2);
}
const fixture = join(import.meta.dirname, '..', 'test', 'fixtures', 'tiny-ovis2.5');
const [D, I, L, VIT_HEADS, IMAGE] = [1152, 4304, 27, 16, 512];
const [H, LLM_I, LLM_L, HEADS, KV, HD, VOCAB] = [2048, 6144, 2, 16, 8, 128, 151936];
const VISUAL = 65536;

const config = JSON.parse(readFileSync(join(fixture, 'config.json'), 'utf8'));
Object.assign(config, { hidden_size: H, num_attention_heads: HEADS, visual_vocab_size: VISUAL });
Object.assign(config.llm_config, {
  hidden_size: H, intermediate_size: LLM_I, num_hidden_layers: LLM_L, num_attention_heads: HEADS, num_key_value_heads: KV, head_dim: HD, max_window_layers: LLM_L,
});
Object.assign(config.vit_config, { hidden_size: D, intermediate_size: I, num_hidden_layers: L, num_attention_heads: VIT_HEADS, image_size: IMAGE });

/** [name, shape, fill]: 'w' random ±0.02, 'one', 'zero'. */
const tensors = [['llm.model.embed_tokens.weight', [VOCAB, H], 'w'], ['llm.model.norm.weight', [H], 'one']];
for (let l = 0; l < LLM_L; l++) {
  const p = `llm.model.layers.${l}.`;
  tensors.push(
    [`${p}input_layernorm.weight`, [H], 'one'], [`${p}post_attention_layernorm.weight`, [H], 'one'],
    [`${p}mlp.down_proj.weight`, [H, LLM_I], 'w'], [`${p}mlp.gate_proj.weight`, [LLM_I, H], 'w'], [`${p}mlp.up_proj.weight`, [LLM_I, H], 'w'],
    [`${p}self_attn.q_norm.weight`, [HD], 'one'], [`${p}self_attn.k_norm.weight`, [HD], 'one'],
    [`${p}self_attn.q_proj.weight`, [HEADS * HD, H], 'w'], [`${p}self_attn.k_proj.weight`, [KV * HD, H], 'w'],
    [`${p}self_attn.v_proj.weight`, [KV * HD, H], 'w'], [`${p}self_attn.o_proj.weight`, [H, HEADS * HD], 'w'],
  );
}
const vit = 'visual_tokenizer.vit.vision_model.';
tensors.push(
  [`${vit}embeddings.patch_embedding.weight`, [D, 3, 16, 16], 'w'], [`${vit}embeddings.patch_embedding.bias`, [D], 'zero'],
  [`${vit}embeddings.position_embedding.weight`, [(IMAGE / 16) ** 2, D], 'w'],
  [`${vit}post_layernorm.weight`, [D], 'one'], [`${vit}post_layernorm.bias`, [D], 'zero'],
);
for (let l = 0; l < L; l++) {
  const p = `${vit}encoder.layers.${l}.`;
  for (const n of ['layer_norm1', 'layer_norm2']) tensors.push([`${p}${n}.weight`, [D], 'one'], [`${p}${n}.bias`, [D], 'zero']);
  for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) tensors.push([`${p}self_attn.${n}.weight`, [D, D], 'w'], [`${p}self_attn.${n}.bias`, [D], 'zero']);
  tensors.push([`${p}mlp.fc1.weight`, [I, D], 'w'], [`${p}mlp.fc1.bias`, [I], 'zero'], [`${p}mlp.fc2.weight`, [D, I], 'w'], [`${p}mlp.fc2.bias`, [D], 'zero']);
}
tensors.push(
  ['visual_tokenizer.head.0.weight', [VISUAL - 4, 4 * D], 'w'],
  ['visual_tokenizer.head.1.weight', [VISUAL - 4], 'one'], ['visual_tokenizer.head.1.bias', [VISUAL - 4], 'zero'],
  ['vte.weight', [VISUAL, H], 'w'],
);

// One 1 MiB block of random bf16 values in ±0.02, repeated: the values do not change the speed.
const BLOCK = 1 << 19;
const random = Buffer.alloc(BLOCK * 2);
const f32 = new Float32Array(1);
const u16 = new Uint16Array(f32.buffer);
for (let i = 0; i < BLOCK; i++) {
  f32[0] = (Math.random() * 2 - 1) * 0.02;
  random.writeUInt16LE(u16[1], i * 2);
}
const ONE = 0x3f80;

const header = {};
let offset = 0;
for (const [name, shape] of tensors) {
  const bytes = shape.reduce((a, b) => a * b, 1) * 2;
  header[name] = { dtype: 'BF16', shape, data_offsets: [offset, offset + bytes] };
  offset += bytes;
}
let json = JSON.stringify({ __metadata__: { format: 'pt' }, ...header });
json += ' '.repeat((8 - (json.length % 8)) % 8);

mkdirSync(out, { recursive: true });
for (const f of readdirSync(fixture)) {
  if (/^(config\.json|model\.safetensors|expected\.safetensors|cases\.json|README\.md|inputs)$/.test(f)) continue;
  copyFileSync(join(fixture, f), join(out, f));
}
writeFileSync(join(out, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);

const stream = createWriteStream(join(out, 'model.safetensors'));
const write = (buf) => (stream.write(buf) ? Promise.resolve() : new Promise((r) => stream.once('drain', r)));
const len = Buffer.alloc(8);
len.writeBigUInt64LE(BigInt(json.length));
await write(len);
await write(Buffer.from(json));
for (const [, shape, fill] of tensors) {
  let bytes = shape.reduce((a, b) => a * b, 1) * 2;
  const block = fill === 'w' ? random : Buffer.alloc(Math.min(bytes, random.length));
  if (fill === 'one') for (let i = 0; i < block.length; i += 2) block.writeUInt16LE(ONE, i);
  while (bytes > 0) {
    const n = Math.min(bytes, block.length);
    await write(n === block.length ? block : block.subarray(0, n));
    bytes -= n;
  }
}
await new Promise((r) => stream.end(r));
process.stderr.write(`wrote ${out}: ${tensors.length} tensors, ${(offset / 2 ** 30).toFixed(2)} GiB\n`);

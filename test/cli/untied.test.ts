// An untied lm_head (the 9B layout): a model directory whose config says tie_word_embeddings=false
// and carries llm.lm_head.weight. With lm_head = embed_tokens the answer equals the tied model's;
// with a different lm_head the logits change, so the engine really reads it.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { comparableIds } from '../helpers/reference.js';
import { fixtureWeights, safetensorsBytes, withModel } from '../helpers/model-copy.js';

/** The files of the fixture with an untied lm_head made from the embedding by `transform` (on bf16 bits). */
function untiedFiles(transform: (bits: Uint16Array) => void): Record<string, Buffer | string> {
  const config = JSON.parse(readFileSync(join(fixtureDir, 'config.json'), 'utf8'));
  config.llm_config.tie_word_embeddings = false;
  const { header, blob } = fixtureWeights();
  const embed = header['llm.model.embed_tokens.weight'];
  const [b, e] = embed.data_offsets;
  const head = new Uint16Array(new Uint8Array(blob.subarray(b, e)).buffer);
  transform(head);
  header['llm.lm_head.weight'] = { dtype: 'BF16', shape: embed.shape, data_offsets: [blob.length, blob.length + (e - b)] };
  const weights = safetensorsBytes(header, Buffer.concat([blob, Buffer.from(head.buffer)]));
  return { 'config.json': JSON.stringify(config), 'model.safetensors': weights };
}

const greedy = (model: string) => runOvis(['ask', '--model', model, '--temperature', '0', '--max-new-tokens', '8', '--json', 'Describe the Yellow Mountain in one sentence.']);

test('an untied lm_head equal to the embedding gives the tied model\'s answer', async () => {
  const r = await withModel(untiedFiles(() => {}), greedy);
  assert.is(r.code, 0, r.stderr);
  const tokens = jsonLines(r.stdout).filter((e) => e.type === 'token');
  assert.equal(tokens.map((t) => t.id), comparableIds('text'));
  const tied = jsonLines((await greedy(fixtureDir)).stdout)[0].logprob;
  assert.is(tokens[0].logprob, tied);
});

test('a different untied lm_head is the one that produces the logits', async () => {
  // Flip the sign bit of every weight: logits are negated, so greedy picks another token.
  const r = await withModel(untiedFiles((bits) => bits.forEach((v, i) => (bits[i] = v ^ 0x8000))), greedy);
  assert.is(r.code, 0, r.stderr);
  const first = jsonLines(r.stdout)[0];
  assert.is.not(first.id, comparableIds('text')[0]);
});

test('an untied config without llm.lm_head.weight is a model error naming it', async () => {
  const files = { ...untiedFiles(() => {}), 'model.safetensors': readFileSync(join(fixtureDir, 'model.safetensors')) };
  const r = await withModel(files, greedy);
  assert.is(r.code, 4, r.stderr);
  assert.match(r.stderr, /llm\.lm_head\.weight/);
});

test.run();

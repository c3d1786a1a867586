// Model directory layouts: weights sharded through model.safetensors.index.json (as the 9B ships)
// give the same answer as one file; a shard that lacks a listed tensor is a model error. And a
// missing Rust toolchain at install time gets a message saying how to get one.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { jsonLines, root, runOvis } from '../helpers/cli.js';
import { fixtureWeights, modelWith, safetensorsBytes } from '../helpers/model-copy.js';
import { removeTempDir } from '../helpers/temp-dirs.js';
import { comparableIds } from '../helpers/reference.js';

/** The fixture's tensors split over two shards (LLM layer 1 and the ViT in the second), with an index. */
function shardedModel(opts: { dropFromShard2?: string } = {}): string {
  const { header, blob } = fixtureWeights();
  const names = Object.keys(header).filter((n) => n !== '__metadata__');
  const second = (n: string) => n.includes('layers.1.') || n.startsWith('visual_tokenizer.vit');
  const shard = (pick: (n: string) => boolean) => {
    const h: Record<string, any> = {};
    const parts: Buffer[] = [];
    let offset = 0;
    for (const n of names.filter(pick)) {
      if (n === opts.dropFromShard2) continue;
      const [b, e] = header[n].data_offsets;
      h[n] = { dtype: header[n].dtype, shape: header[n].shape, data_offsets: [offset, offset + (e - b)] };
      parts.push(blob.subarray(b, e));
      offset += e - b;
    }
    return safetensorsBytes(h, Buffer.concat(parts));
  };
  const files = ['model-00001-of-00002.safetensors', 'model-00002-of-00002.safetensors'];
  const weightMap = Object.fromEntries(names.map((n) => [n, files[second(n) ? 1 : 0]]));
  const dir = modelWith({
    [files[0]]: shard((n) => !second(n)),
    [files[1]]: shard(second),
    'model.safetensors.index.json': JSON.stringify({ metadata: { total_size: blob.length }, weight_map: weightMap }),
  });
  rmSync(join(dir, 'model.safetensors'));
  return dir;
}

const greedy = (model: string) => runOvis(['ask', '--model', model, '--temperature', '0', '--max-new-tokens', '8', '--json', 'Describe the Yellow Mountain in one sentence.']);

test('sharded weights with an index give the reference answer', async () => {
  const dir = shardedModel();
  const r = await greedy(dir).finally(() => removeTempDir(dir));
  assert.is(r.code, 0, r.stderr);
  assert.equal(jsonLines(r.stdout).filter((e) => e.type === 'token').map((t) => t.id), comparableIds('text'));
});

test('a tensor listed in the index but missing from its shard is a model error naming it', async () => {
  const name = 'llm.model.layers.1.self_attn.k_norm.weight';
  const dir = shardedModel({ dropFromShard2: name });
  const r = await greedy(dir).finally(() => removeTempDir(dir));
  assert.is(r.code, 4, r.stderr);
  assert.ok(r.stderr.includes(name), r.stderr);
});

test('installing without Rust says how to get it', () => {
  const r = spawnSync(process.execPath, [join(root, 'scripts', 'build-engine.js')], { env: { ...process.env, CARGO: '/nonexistent/cargo' }, encoding: 'utf8' });
  assert.is(r.status, 1);
  assert.match(r.stderr, /cargo was not found/);
  assert.match(r.stderr, /rustup/);
});

test.run();

// Every case of the reference fixture: the rendered prompt text and the expanded input ids must equal
// what the model's own Hugging Face code produced (cases.json `prompt`, expected.safetensors `NAME.input_ids`).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readSafetensors, toNumbers } from '../helpers/safetensors.js';
import {
  buildUserContent,
  mediaKindsOf,
  PromptBuilder,
  type ChatMessage,
  type ContentItem,
  type GridTHW,
} from '../../src/prompt/index.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');

interface FixtureCase {
  name: string;
  messages: ChatMessage[];
  images: string[];
  video: string[];
  enable_thinking: boolean;
  prompt: string;
  greedy_ids: number[];
  greedy_text: string;
}

const cases = (JSON.parse(readFileSync(join(FIXTURE, 'cases.json'), 'utf8')) as { cases: FixtureCase[] }).cases;
const expected = readSafetensors(join(FIXTURE, 'expected.safetensors'));
// uvu loads test files as CommonJS through tsx, so no top-level await: load once before the tests.
let builder: PromptBuilder;
test.before(async () => {
  builder = await PromptBuilder.load(FIXTURE);
});

function gridsOf(name: string): GridTHW[] {
  const t = expected.get(`${name}.grid_thws`);
  if (!t) return [];
  const v = toNumbers(t);
  const rows: GridTHW[] = [];
  for (let i = 0; i < t.shape[0]; i++) rows.push([v[3 * i], v[3 * i + 1], v[3 * i + 2]]);
  return rows;
}

function expectedIds(name: string): number[] {
  const t = expected.get(`${name}.input_ids`);
  assert.ok(t, `expected.safetensors has ${name}.input_ids`);
  return toNumbers(t);
}

test('the fixture has the six documented cases', () => {
  assert.equal(
    cases.map((c) => c.name),
    ['text', 'think', 'image', 'two_images', 'video', 'multiturn'],
  );
});

for (const c of cases) {
  test(`${c.name}: rendered prompt equals the reference text`, () => {
    assert.is(builder.render(c.messages, { enableThinking: c.enable_thinking }), c.prompt);
  });

  test(`${c.name}: input ids equal the reference's`, () => {
    const kinds = mediaKindsOf(c.messages);
    assert.is(kinds.length, c.images.length + (c.video.length > 0 ? 1 : 0));
    const grids = gridsOf(c.name);
    const { text, ids } = builder.encode(c.messages, { enableThinking: c.enable_thinking, grids, kinds });
    assert.is(text, c.prompt);
    assert.instance(ids, Int32Array);
    assert.equal(Array.from(ids), expectedIds(c.name));
  });

  test(`${c.name}: the CLI's way of building the user turn gives the same ids`, () => {
    // The last user turn rebuilt from (text, media) the way the CLI does it, with and without markers.
    const last = c.messages[c.messages.length - 1];
    const items: ContentItem[] = typeof last.content === 'string' ? [{ type: 'text', text: last.content }] : last.content;
    const text = items.map((i) => (i.type === 'text' ? i.text : '')).join('');
    const media = items.flatMap((i) => (i.type === 'text' ? [] : [i.type]));
    const history = c.messages.slice(0, -1);
    const grids = gridsOf(c.name);
    const marked = media.map((k) => `<${k}>\n`).join('') + text;
    for (const content of [buildUserContent(text, media), buildUserContent(marked, media)]) {
      const messages: ChatMessage[] = [...history, { role: 'user', content }];
      const out = builder.encode(messages, { enableThinking: c.enable_thinking, grids }); // kinds by default
      assert.is(out.text, c.prompt);
      assert.equal(Array.from(out.ids), expectedIds(c.name));
    }
  });

  test(`${c.name}: greedy ids decode to the reference text`, () => {
    assert.is(builder.tokenizer.decode(c.greedy_ids, { skipSpecial: true }), c.greedy_text);
    const dec = builder.streamDecoder();
    const streamed = c.greedy_ids.map((id) => dec.push(id)).join('') + dec.flush();
    assert.is(streamed, c.greedy_text);
  });
}

test.run();

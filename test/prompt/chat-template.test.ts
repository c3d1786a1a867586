// The chat template renderer against text produced by Python's jinja2 (ImmutableSandboxedEnvironment,
// trim_blocks, lstrip_blocks: what transformers uses) with the fixture's chat_template.json.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { InputError, ModelError } from '../../src/errors.js';
import { ChatTemplate } from '../../src/prompt/chat-template.js';
import type { ChatMessage } from '../../src/prompt/types.js';
import { withTempDir } from '../helpers/temp-dirs.js';

const FIXTURE = join(process.cwd(), 'test/fixtures/tiny-ovis2.5');
const SOURCE = (JSON.parse(readFileSync(join(FIXTURE, 'chat_template.json'), 'utf8')) as { chat_template: string })
  .chat_template;
const EMPTY_THINK = '<think>\n\n</think>\n\n';
let tpl: ChatTemplate;
test.before(async () => {
  tpl = await ChatTemplate.load(FIXTURE);
});

test('enable_thinking false appends the empty think block; true leaves the turn open', () => {
  const msgs: ChatMessage[] = [{ role: 'user', content: 'Hi' }];
  assert.is(tpl.render(msgs, { enableThinking: false }), `<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n${EMPTY_THINK}`);
  assert.is(tpl.render(msgs, { enableThinking: true }), '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n');
  assert.is(tpl.render(msgs, { enableThinking: false, addGenerationPrompt: false }), '<|im_start|>user\nHi<|im_end|>\n');
});

test("assistant history keeps only the text after </think>, minus leading newlines only (Python's lstrip('\\n'))", () => {
  const msgs: ChatMessage[] = [
    { role: 'user', content: 'Hi' },
    { role: 'assistant', content: '<think>\nhmm\n</think>\n\n  Two spaces kept.\n' },
    { role: 'user', content: 'Ok' },
  ];
  assert.is(
    tpl.render(msgs, { enableThinking: true }),
    '<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n  Two spaces kept.\n<|im_end|>\n<|im_start|>user\nOk<|im_end|>\n<|im_start|>assistant\n',
  );
  // U+0085 is whitespace to Python and U+FEFF is not; neither is a "\n", so both stay.
  assert.is(
    tpl.render([{ role: 'assistant', content: '\n\n\x85\ufeff x' }], { enableThinking: false }),
    `<|im_start|>assistant\n\x85\ufeff x<|im_end|>\n<|im_start|>assistant\n${EMPTY_THINK}`,
  );
});

test('typed <image>/<video> are deleted from text; items are joined with newlines', () => {
  const msgs: ChatMessage[] = [
    { role: 'system', content: 'Sys <image>prompt<video>' },
    {
      role: 'user',
      content: [{ type: 'text', text: 'a<image>b' }, { type: 'image' }, { type: 'video' }, { type: 'text', text: '' }],
    },
  ];
  assert.is(
    tpl.render(msgs, { enableThinking: true }),
    '<|im_start|>system\nSys prompt<|im_end|>\n<|im_start|>user\nab\n<image>\n<video>\n<|im_end|>\n<|im_start|>assistant\n',
  );
});

test('an assistant turn given as a list renders empty, as in the reference (Jinja2 loop scoping)', () => {
  const msgs: ChatMessage[] = [
    { role: 'assistant', content: [{ type: 'text', text: '<think>a</think>' }, { type: 'text', text: '\n\nb' }] },
  ];
  assert.is(tpl.render(msgs, { enableThinking: true }), '<|im_start|>assistant\n<|im_end|>\n<|im_start|>assistant\n');
});

test('unknown roles and content types are InputErrors carrying the template message', () => {
  const bad = [
    [{ role: 'tool', content: 'x' }],
    [{ role: 'user', content: [{ type: 'audio' }] }],
    [{ role: 'assistant', content: [{ type: 'image' }] }],
  ] as unknown as ChatMessage[][];
  for (const msgs of bad) {
    assert.throws(() => tpl.render(msgs, { enableThinking: false }), (e: unknown) => e instanceof InputError);
  }
  assert.throws(
    () => tpl.render(bad[0], { enableThinking: false }),
    (e: unknown) => /Invalid role/.test((e as Error).message),
  );
});

test('strip/lstrip/rstrip follow Python in any template', () => {
  const py = new ChatTemplate("{{ messages[0].content.strip() }}|{{ messages[0].content.lstrip('x\\n') }}|{{ messages[0].content.rstrip('x') }}|{{ messages[0].content.strip('') }}");
  const s = '\x1c\nx a x\ufeff\n';
  // Python: s.strip() -> 'x a x\ufeff', s.lstrip('x\n') -> '\x1c\nx a x\ufeff\n' (\x1c is first),
  // s.rstrip('x') -> unchanged ('\n' last), s.strip('') -> unchanged
  assert.is(py.render([{ role: 'user', content: s }], { enableThinking: false }), `x a x\ufeff|${s}|${s}|${s}`);
});

test('loading falls back to chat_template.jinja, then tokenizer_config.json; none is a ModelError', async () => {
  await withTempDir('ovis-tpl-', async (dir) => {
    await assert_rejects(() => ChatTemplate.load(dir), ModelError);
    writeFileSync(join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: SOURCE, eos_token: '<|im_end|>' }));
    const fromConfig = await ChatTemplate.load(dir);
    assert.is(fromConfig.source, SOURCE);
    writeFileSync(join(dir, 'chat_template.jinja'), '{{ eos_token }}jinja');
    const fromJinja = await ChatTemplate.load(dir);
    assert.is(fromJinja.render([], { enableThinking: false }), '<|im_end|>jinja');
    writeFileSync(join(dir, 'chat_template.json'), JSON.stringify({ chat_template: 'json' }));
    assert.is((await ChatTemplate.load(dir)).source, 'json');
  });
});

test('a template that does not parse is a ModelError', () => {
  assert.throws(() => new ChatTemplate('{% for %}'), (e: unknown) => e instanceof ModelError);
});

async function assert_rejects(fn: () => Promise<unknown>, cls: new (...args: never[]) => Error): Promise<void> {
  try {
    await fn();
  } catch (err) {
    assert.instance(err, cls);
    return;
  }
  assert.unreachable('expected a rejection');
}

test.run();

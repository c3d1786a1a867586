// Checking a chat completion body: defaults, vLLM's extensions, and a 400 naming the field for
// each value that cannot be served.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { HttpError } from '../../src/server/http-error.js';
import { DEFAULT_MAX_TOKENS, parseCompletionParams } from '../../src/server/request-params.js';
import { translateMessages } from '../../src/server/request-messages.js';

const messages = [{ role: 'user', content: 'Hi' }];

function refused(body: unknown): HttpError {
  try {
    parseCompletionParams(body);
  } catch (e) {
    if (e instanceof HttpError) return e;
    throw e;
  }
  throw new Error(`accepted: ${JSON.stringify(body)}`);
}

test('defaults: no stream, the default length, thinking on as vLLM (off only when enable_thinking is false)', () => {
  const p = parseCompletionParams({ messages });
  assert.is(p.stream, false);
  assert.is(p.maxTokens, DEFAULT_MAX_TOKENS);
  assert.is(p.enableThinking, true);
  assert.is(parseCompletionParams({ messages, chat_template_kwargs: { enable_thinking: false } }).enableThinking, false);
  assert.equal(p.stop, []);
});

test('max_completion_tokens wins over max_tokens; vLLM extensions are read', () => {
  const p = parseCompletionParams({
    messages, max_tokens: 5, max_completion_tokens: 7, top_k: -1, stop: 'x',
    chat_template_kwargs: { enable_thinking: true }, mm_processor_kwargs: { min_pixels: 100, max_pixels: 1000 },
    stream: true, stream_options: { include_usage: true },
  });
  assert.is(p.maxTokens, 7);
  assert.is(p.topK, 0);
  assert.equal(p.stop, ['x']);
  assert.is(p.enableThinking, true);
  assert.is(p.minPixels, 100);
  assert.is(p.maxPixels, 1000);
  assert.is(p.includeUsage, true);
});

test('a thinking budget implies thinking', () => {
  assert.is(parseCompletionParams({ messages, thinking_budget: 10 }).enableThinking, true);
});

test('each unservable value is a 400 naming its field', () => {
  const cases: Array<[object, string]> = [
    [{ messages, n: 2 }, 'n'],
    [{ messages, temperature: -1 }, 'temperature'],
    [{ messages, top_p: 0 }, 'top_p'],
    [{ messages, max_tokens: 0 }, 'max_tokens'],
    [{ messages, max_tokens: 1.5 }, 'max_tokens'],
    [{ messages, top_logprobs: 3 }, 'top_logprobs'],
    [{ messages, logprobs: true, top_logprobs: 21 }, 'top_logprobs'],
    [{ messages, stop: ['a', 'b', 'c', 'd', 'e'] }, 'stop'],
    [{ messages, frequency_penalty: 0.5 }, 'frequency_penalty'],
    [{ messages, tools: [{ type: 'function' }] }, 'tools'],
    [{ messages: [] }, 'messages'],
    [{ messages, stream: 'yes' }, 'stream'],
    [{ messages, mm_processor_kwargs: { min_pixels: 1000, max_pixels: 10 } }, 'mm_processor_kwargs.min_pixels'],
    [{ messages, chat_template_kwargs: [] }, 'chat_template_kwargs'],
  ];
  for (const [body, param] of cases) {
    const e = refused(body);
    assert.is(e.status, 400, JSON.stringify(body));
    assert.is(e.param, param, JSON.stringify(body));
  }
});

test('messages: parts become template items in order, media refs collected; bad parts are 400s', () => {
  const { messages: out, media } = translateMessages([
    { role: 'developer', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'image_url', image_url: { url: 'data:image/png;base64,AA' } }, { type: 'text', text: 'What?' }, { type: 'video_url', video_url: 'data:video/mp4;base64,AA' }] },
  ]);
  assert.equal(out, [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: [{ type: 'image' }, { type: 'text', text: 'What?' }, { type: 'video' }] },
  ]);
  assert.equal(media.map((m) => [m.kind, m.where]), [['image', 'messages[1].content[0]'], ['video', 'messages[1].content[2]']]);
  for (const bad of [
    [{ role: 'tool', content: 'x' }],
    [{ role: 'user', content: [{ type: 'input_audio' }] }],
    [{ role: 'user', content: 'Hi' }, { role: 'assistant', content: 'Hello' }],
    [{ role: 'user', content: '\uFDD0' }],
  ]) {
    let status = 0;
    try {
      translateMessages(bad);
    } catch (e) {
      status = (e as HttpError).status;
    }
    assert.is(status, 400, JSON.stringify(bad));
  }
});

test.run();

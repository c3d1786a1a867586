// `ovis serve` answers as OpenAI/vLLM do, checked with the official openai SDK as the client,
// against the real server and engine on the fixture model (one server for the file). Tolerances
// (fixture README, test/helpers/vision.ts): greedy ids equal the reference up to the first top-2
// gap under 0.02; log-probabilities within 2e-3 (text) and 3e-3 (from image files).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import OpenAI from 'openai';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { caseOf, comparableIds, logSoftmaxAt } from '../helpers/reference.js';
import { metric, startServe, type Served } from '../helpers/serve.js';
import { input, questionOf } from '../helpers/vision.js';

let server: Served;
let client: OpenAI;
const MODEL = 'tiny-ovis2.5';

test.before(async () => {
  server = await startServe(['--max-media-bytes', String(256 * 1024)]);
  client = new OpenAI({ baseURL: `${server.url}/v1`, apiKey: 'unused', maxRetries: 0 });
});
test.after(async () => {
  assert.is(await server.stop(), 0, server.stderr());
});

const textCase = caseOf('text');
// Thinking off, as the fixture's reference cases (and `ovis ask`) are; the server's default is vLLM's, on.
const greedy = { model: MODEL, temperature: 0, max_tokens: 8, chat_template_kwargs: { enable_thinking: false } };
/** vLLM's extension: logprobs name tokens "token_id:ID", so the generated ids can be read back. */
const ids = (content: Array<{ token: string }>) => content.map((t) => Number(t.token.replace('token_id:', '')));

test('non-streaming: the greedy ids and text of `ovis ask`, and the reference ids', async () => {
  const asked = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '--max-new-tokens', '8', '--json', textCase.messages[0].content]);
  assert.is(asked.code, 0, asked.stderr);
  const askIds = jsonLines(asked.stdout).filter((e) => e.type === 'token').map((t) => t.id);
  const r: any = await client.chat.completions.create({ ...greedy, messages: textCase.messages, logprobs: true, return_tokens_as_token_ids: true } as any);
  assert.is(r.object, 'chat.completion');
  assert.is(r.model, MODEL);
  const choice = r.choices[0];
  assert.equal(ids(choice.logprobs.content), askIds);
  const want = comparableIds('text');
  assert.equal(askIds.slice(0, want.length), want);
  assert.is(choice.message.role, 'assistant');
  assert.is(choice.message.content, textCase.greedy_text.trim());
  assert.is(choice.finish_reason, 'length');
  assert.equal(r.usage.prompt_tokens, textCase.num_ids);
  assert.equal(r.usage.completion_tokens, 8);
  assert.equal(r.usage.total_tokens, textCase.num_ids + 8);
});

test('streaming: the same ids and text, ending with [DONE], usage in the last chunk', async () => {
  const stream = await client.chat.completions.create({ ...greedy, messages: textCase.messages, stream: true, stream_options: { include_usage: true }, logprobs: true, return_tokens_as_token_ids: true } as any);
  let text = '';
  const got: number[] = [];
  const chunks: any[] = [];
  for await (const c of stream as any) {
    chunks.push(c);
    if (c.choices[0]?.delta?.content) text += c.choices[0].delta.content;
    if (c.choices[0]?.logprobs?.content) got.push(...ids(c.choices[0].logprobs.content));
  }
  assert.is(chunks[0].choices[0].delta.role, 'assistant');
  assert.ok(chunks.every((c) => c.object === 'chat.completion.chunk'));
  assert.equal(got.slice(0, comparableIds('text').length), comparableIds('text'));
  assert.is(got.length, 8);
  assert.is(text.trim(), textCase.greedy_text.trim());
  assert.is(chunks.at(-2).choices[0].finish_reason, 'length');
  const last = chunks.at(-1);
  assert.equal(last.choices, []);
  assert.equal(last.usage.completion_tokens, 8);
});

test('an image as a data URL: the reference ids of the image case', async () => {
  const c = caseOf('image');
  const url = `data:image/jpeg;base64,${readFileSync(input('photo.jpg')).toString('base64')}`;
  const r: any = await client.chat.completions.create({
    ...greedy, logprobs: true, return_tokens_as_token_ids: true,
    mm_processor_kwargs: { min_pixels: c.min_pixels, max_pixels: c.max_pixels },
    messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: questionOf('image') }] }],
  } as any);
  const want = comparableIds('image');
  const content = r.choices[0].logprobs.content;
  assert.equal(ids(content).slice(0, want.length), want);
  assert.ok(Math.abs(content[0].logprob - logSoftmaxAt('image', want[0])) < 3e-3, `first logprob ${content[0].logprob}`);
  assert.is(r.usage.prompt_tokens, c.num_ids);
});

test('thinking (chat_template_kwargs.enable_thinking): reasoning_content in the message and in deltas', async () => {
  const c = caseOf('think');
  const body = { ...greedy, messages: c.messages, chat_template_kwargs: { enable_thinking: true }, logprobs: true, return_tokens_as_token_ids: true } as any;
  const r: any = await client.chat.completions.create(body);
  const want = comparableIds('think');
  assert.equal(ids(r.choices[0].logprobs.content).slice(0, want.length), want);
  assert.is(r.usage.prompt_tokens, c.num_ids);
  // Eight tokens without </think>: all of it is thinking, no answer yet.
  assert.ok(r.choices[0].message.reasoning_content.length > 0);
  assert.is(r.choices[0].message.content, '');
  let reasoning = '';
  let content = '';
  for await (const ch of (await client.chat.completions.create({ ...body, stream: true })) as any) {
    reasoning += ch.choices[0]?.delta?.reasoning_content ?? '';
    content += ch.choices[0]?.delta?.content ?? '';
  }
  assert.is(reasoning.trim(), r.choices[0].message.reasoning_content);
  assert.is(content, '');
});

test('thinking_budget: thinking closed with the early-stop text after the budget, then the answer', async () => {
  const r: any = await client.chat.completions.create({ ...greedy, messages: caseOf('think').messages, thinking_budget: 3 } as any);
  const m = r.choices[0].message;
  assert.match(m.reasoning_content, /Considering the limited time by the user, I have to give the solution based on the thinking directly now\.$/);
  assert.not.match(m.content, /Considering|<\/think>/);
  // 3 thinking tokens, the 24 early-stop tokens ovis appends, then what is left of max_tokens (8 − 3).
  if (r.choices[0].finish_reason === 'length') assert.is(r.usage.completion_tokens, 3 + 24 + 5);
});

test('sampling: the same seed gives the same answer; top_k 1 without repetition penalty is greedy', async () => {
  const body = { model: MODEL, messages: textCase.messages, max_tokens: 8, temperature: 1, top_p: 0.9, seed: 42, chat_template_kwargs: { enable_thinking: false } } as any;
  const a = await client.chat.completions.create(body);
  const b = await client.chat.completions.create(body);
  assert.is(a.choices[0].message.content, b.choices[0].message.content);
  const k1 = await client.chat.completions.create({ ...body, top_k: 1, top_p: 1, repetition_penalty: 1 } as any);
  assert.is(k1.choices[0].message.content, textCase.greedy_text.trim());
});

test('logprobs with top_logprobs: the reference first-step alternatives and log-probabilities', async () => {
  const r: any = await client.chat.completions.create({ ...greedy, messages: textCase.messages, logprobs: true, top_logprobs: 5, max_tokens: 2, return_tokens_as_token_ids: true } as any);
  const first = r.choices[0].logprobs.content[0];
  assert.equal(ids(first.top_logprobs), textCase.first_top5);
  for (const [k, t] of first.top_logprobs.entries()) {
    assert.ok(Math.abs(t.logprob - logSoftmaxAt('text', textCase.first_top5[k])) < 2e-3, `top ${k}: ${t.logprob}`);
  }
  assert.is(first.token, first.top_logprobs[0].token);
  // Without the extension, tokens are their text and bytes their UTF-8.
  const plain: any = await client.chat.completions.create({ ...greedy, messages: textCase.messages, logprobs: true, max_tokens: 1 });
  const t = plain.choices[0].logprobs.content[0];
  assert.is(t.token, textCase.greedy_text.slice(0, t.token.length));
  assert.equal(Buffer.from(t.bytes).toString('utf8'), t.token);
});

test('16 concurrent streams all complete with correct usage', async () => {
  const prompts = Array.from({ length: 16 }, (_, i) => `Count to ${i + 1}.`);
  const results = await Promise.all(prompts.map(async (p) => {
    const stream = await client.chat.completions.create({ ...greedy, max_tokens: 6, logprobs: true, messages: [{ role: 'user', content: p }], stream: true, stream_options: { include_usage: true } });
    let tokens = 0;
    let usage: any;
    let finish: string | null = null;
    for await (const c of stream) {
      tokens += c.choices[0]?.logprobs?.content?.length ?? 0;
      if (c.choices[0]?.finish_reason) finish = c.choices[0].finish_reason;
      if (c.usage) usage = c.usage;
    }
    return { tokens, usage, finish };
  }));
  for (const [i, r] of results.entries()) {
    assert.ok(r.usage, `stream ${i} has usage`);
    const own = await client.chat.completions.create({ ...greedy, max_tokens: 1, messages: [{ role: 'user', content: prompts[i] }] });
    assert.is(r.usage.prompt_tokens, own.usage!.prompt_tokens, `stream ${i} prompt tokens`);
    assert.is(r.usage.completion_tokens, r.tokens, `stream ${i}: usage counts the tokens streamed`);
    if (r.finish === 'length') assert.is(r.tokens, 6);
    else assert.is(r.finish, 'stop');
    assert.is(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  }
});

test('a continued conversation reuses the cached prefix of the first turn', async () => {
  const first = [{ role: 'user' as const, content: 'Tell me about the Yellow Mountain and its famous pines.' }];
  const a = await client.chat.completions.create({ ...greedy, messages: first });
  const b: any = await client.chat.completions.create({ ...greedy, messages: [...first, { role: 'assistant', content: a.choices[0].message.content }, { role: 'user', content: 'And in winter?' }] });
  assert.ok(b.usage.prompt_tokens_details.cached_tokens >= a.usage!.prompt_tokens - 4, `cached ${b.usage.prompt_tokens_details.cached_tokens} of ${a.usage!.prompt_tokens}`);
});

test('a continued conversation about an image reuses the cached image too', async () => {
  const url = `data:image/png;base64,${readFileSync(input('small.png')).toString('base64')}`;
  const first: any[] = [{ role: 'user', content: [{ type: 'image_url', image_url: { url } }, { type: 'text', text: 'Name one color in the image.' }] }];
  const a = await client.chat.completions.create({ ...greedy, messages: first });
  const b: any = await client.chat.completions.create({ ...greedy, messages: [...first, { role: 'assistant', content: a.choices[0].message.content }, { role: 'user', content: 'Another one?' }] });
  assert.ok(a.usage!.prompt_tokens > 64, 'the image takes most of the prompt');
  assert.ok(b.usage.prompt_tokens_details.cached_tokens >= a.usage!.prompt_tokens - 4, `cached ${b.usage.prompt_tokens_details.cached_tokens} of ${a.usage!.prompt_tokens}`);
});

test('a stop string ends the answer before it, with finish_reason stop', async () => {
  const full = await client.chat.completions.create({ ...greedy, messages: textCase.messages });
  const text = full.choices[0].message.content!;
  const stop = text.slice(2, 4);
  const r = await client.chat.completions.create({ ...greedy, messages: textCase.messages, stop: [stop] });
  assert.is(r.choices[0].message.content, text.slice(0, text.indexOf(stop)));
  assert.is(r.choices[0].finish_reason, 'stop');
});

/** The SDK's error for a request, with its status and OpenAI-shaped body. */
async function apiError(p: Promise<unknown>): Promise<InstanceType<typeof OpenAI.APIError>> {
  try {
    await p;
  } catch (e) {
    if (e instanceof OpenAI.APIError) return e;
    throw e;
  }
  throw new Error('the request succeeded; an error was expected');
}

test('bad requests get OpenAI-shaped errors with their status, and the server keeps serving', async () => {
  const bad = await fetch(`${server.url}/v1/chat/completions`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"messages": [' });
  assert.is(bad.status, 400);
  const body = await bad.json();
  assert.is(body.error.type, 'invalid_request_error');
  assert.match(body.error.message, /not valid JSON/);

  const unknown = await apiError(client.chat.completions.create({ ...greedy, model: 'gpt-4o', messages: textCase.messages }));
  assert.is(unknown.status, 404);
  assert.is(unknown.code, 'model_not_found');

  const n2 = await apiError(client.chat.completions.create({ ...greedy, n: 2, messages: textCase.messages }));
  assert.is(n2.status, 400);
  assert.is(n2.param, 'n');

  const big = `data:image/png;base64,${Buffer.alloc(512 * 1024, 7).toString('base64')}`;
  const huge = await apiError(client.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: big } }, { type: 'text', text: 'What?' }] }] }));
  assert.is(huge.status, 413);
  assert.match(huge.message, /--max-media-bytes/);

  const file = await apiError(client.chat.completions.create({ ...greedy, messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `file://${input('photo.jpg')}` } }] }] }));
  assert.is(file.status, 400);
  assert.match(file.message, /--allow-local-files/);

  const ok = await client.chat.completions.create({ ...greedy, max_tokens: 2, messages: textCase.messages });
  assert.is(ok.choices[0].finish_reason, 'length');
});

test('/v1/models, /health and /metrics', async () => {
  const models = await client.models.list();
  assert.equal(models.data.map((m) => m.id), [MODEL]);
  assert.is((await client.models.retrieve(MODEL)).id, MODEL);
  assert.is((await apiError(client.models.retrieve('gpt-4o'))).status, 404);
  const health = await (await fetch(`${server.url}/health`)).json();
  assert.is(health.status, 'ok');
  assert.is(health.running, 0);
  assert.ok(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="200"}') >= 25);
  assert.is(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="404"}'), 1);
  assert.is(await metric(server.url, 'ovis_http_requests_total{route="/v1/chat/completions",status="413"}'), 1);
  assert.ok(await metric(server.url, 'ovis_generation_tokens_total') >= 16 * 6);
  assert.ok(await metric(server.url, 'ovis_time_to_first_token_seconds_count') >= 25);
  assert.ok(await metric(server.url, 'ovis_prompt_cached_tokens_total') > 0);
  assert.is(await metric(server.url, 'ovis_requests_running'), 0);
  const page = await fetch(`${server.url}/`);
  assert.match(page.headers.get('content-type') ?? '', /text\/html/);
});

test.run();

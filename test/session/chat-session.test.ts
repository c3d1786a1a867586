// A chat's kept engine session gives exactly what a fresh prompt of the whole conversation gives
// (greedy ids equal to `ask --messages`), while prefilling only what the cache does not hold.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readGenerationDefaults } from '../../src/model/generation-config.js';
import { createLogger } from '../../src/output/logger.js';
import { ChatSession, type ChatSettings } from '../../src/session/chat-session.js';
import type { TokenOut } from '../../src/session/turn.js';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';

const work = mkdtempSync(join(tmpdir(), 'ovis-session-'));
const photo = join(fixtureDir, 'inputs', 'photo.jpg');
const settings = (): ChatSettings => ({ think: false, maxNewTokens: 6, temperature: 0, media: { minPixels: 448 * 448, frames: 8, maxInputPixels: 1e8 } });
let session: ChatSession;

test.before(async () => {
  session = await ChatSession.start(fixtureDir, readGenerationDefaults(fixtureDir), settings(), 'cpu', createLogger(), false);
});
test.after(async () => {
  await session.close();
  rmSync(work, { recursive: true, force: true });
});

const collect = () => {
  const ids: number[] = [];
  return { ids, hooks: { onToken: (t: TokenOut) => ids.push(t.id) } };
};

test('the second turn reuses the image and equals ask --messages token for token', async () => {
  const image = await session.attach({ kind: 'image', source: photo }, []);
  const first = await session.ask('Describe this image.', [image], collect().hooks);
  assert.is(first.done.cached_tokens, 0);
  const c = collect();
  const second = await session.ask('What colour is it?', [], c.hooks);
  // Kept: everything before the first answer (its template form differs from what was generated).
  assert.ok(second.done.cached_tokens > 300, `${second.done.cached_tokens} positions reused`);
  const file = join(work, 'conv.json');
  writeFileSync(file, JSON.stringify([
    { role: 'user', content: [{ type: 'image', path: photo }, { type: 'text', text: 'Describe this image.' }] },
    { role: 'assistant', content: first.answer },
    { role: 'user', content: 'What colour is it?' },
  ]));
  const fresh = await runOvis(['ask', '--model', fixtureDir, '--temperature', '0', '-n', '6', '--json', '--device', 'cpu', '--messages', file]);
  assert.is(fresh.code, 0, fresh.stderr);
  assert.equal(c.ids, jsonLines(fresh.stdout).filter((e) => e.type === 'token').map((e) => e.id));
  assert.is(second.done.prompt_tokens + second.done.cached_tokens, jsonLines(fresh.stdout).at(-1).usage.prompt_tokens);
});

test('retry keeps the whole prompt but its last position and answers the same (greedy)', async () => {
  const before = session.last!;
  const again = await session.retry(collect().hooks);
  assert.is(again.done.prompt_tokens, 1);
  assert.is(again.answer, before.answer);
});

test('clear keeps the settings; a system prompt change prefills from where the prompts differ', async () => {
  session.clear();
  assert.is(session.conversation.messages.length, 0);
  session.settings.system = 'Be brief.';
  const a = await session.ask('Hello', [], collect().hooks);
  assert.ok(a.done.cached_tokens >= 1 && a.done.cached_tokens < 5, `${a.done.cached_tokens}`);
  session.clear();
  const b = await session.ask('Hi there', [], collect().hooks);
  assert.ok(b.done.cached_tokens > 5, 'the system prompt stays cached after /clear');
});

test('a cancelled turn keeps its partial answer; one cancelled before any token is withdrawn', async () => {
  session.clear();
  const ctl = new AbortController();
  let n = 0;
  session.settings.maxNewTokens = 40000;
  session.settings.temperature = 1;
  const r = await session.ask('Count', [], { onToken: () => (++n === 5 ? ctl.abort() : undefined), signal: ctl.signal });
  assert.is(r.done.finish_reason, 'cancelled');
  assert.equal(session.conversation.messages.map((m) => m.role), ['user', 'assistant']);
  const gone = new AbortController();
  gone.abort();
  const w = await session.ask('Again', [], { onToken: () => {}, signal: gone.signal });
  assert.ok(w.withdrawn);
  assert.is(session.conversation.messages.length, 2);
  // The cache still describes the engine: the next turn works and reuses the first message.
  session.settings.maxNewTokens = 3;
  session.settings.temperature = 0;
  const next = await session.ask('Go on', [], collect().hooks);
  assert.is(next.done.finish_reason, 'length');
  assert.ok(next.done.cached_tokens > 0);
});

test.run();

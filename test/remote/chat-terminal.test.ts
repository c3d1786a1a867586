// `ovis chat --endpoint` in a real terminal (tmux) against the loopback OpenAI/vLLM server: the
// banner and status name the server, an image typed by path goes as a data URL, thinking folds as
// locally, each turn sends the whole conversation, Ctrl+C stops a streaming answer.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { copyFileSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fixtureDir } from '../helpers/cli.js';
import { OpenAITestServer, type Reply } from '../helpers/openai-server.js';
import { tempDir } from '../helpers/temp-dirs.js';
import { ovisCommand, Term, tmuxAvailable } from '../helpers/tmux.js';

const work = tempDir('ovis-remote-chat-');
copyFileSync(join(fixtureDir, 'inputs', 'photo.jpg'), join(work, 'photo.jpg'));
const env = { XDG_STATE_HOME: join(work, 'state'), CI: 'true', OVIS_API_KEY: 'k1' };

let server: OpenAITestServer | undefined;
let term: Term | undefined;
test.after.each(async () => {
  term?.kill();
  await server?.close();
});

const available = tmuxAvailable();
if (!available && (process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS)) throw new Error('tmux is needed for the terminal tests (apt-get install tmux)');
const tt = available ? test : test.skip;
if (!available) process.stderr.write('SKIPPED: remote chat terminal tests: tmux is not installed (apt-get install tmux)\n');

tt('a remote chat: image by path, thinking folded, the conversation sent whole each turn, Ctrl+C stops', async () => {
  let turn = 0;
  server = await OpenAITestServer.start({
    apiKey: 'k1',
    reply: (): Reply => {
      turn += 1;
      if (turn === 1) return { deltas: [{ reasoning_content: 'A photo' }, { reasoning_content: ' of a scene.' }, { content: 'A sunny street.' }], usage: { prompt_tokens: 320, completion_tokens: 3 } };
      if (turn === 2) return { deltas: [{ content: 'Yellow and blue.' }], usage: { prompt_tokens: 330, completion_tokens: 1, cached_tokens: 320 } };
      return { stall: [{ content: 'One, two,' }] };
    },
  });
  term = new Term(ovisCommand(['chat', '--endpoint', server.url, '--temperature', '0']), { cwd: work, env });
  let s = await term.waitFor(/context 0\/40,960/);
  assert.match(s, new RegExp(`ovis chat · AIDC-AI/Ovis2\\.5-9B · remote: ${server.url.replace(/[./]/g, '\\$&')}`));
  term.type('Describe photo.jpg');
  term.keys('Enter');
  s = await term.waitFor(/A sunny street\.[\s\S]*context 323\/40,960/);
  assert.match(s, /image photo\.jpg · 640×480 → 640×480 · 300 visual tokens/);
  assert.match(s, /▸ thought for 2 tokens/);
  term.type('And the colours?');
  term.keys('Enter');
  await term.waitFor(/Yellow and blue\./);
  const [first, second] = server.completions;
  assert.is(first.headers.authorization, 'Bearer k1');
  assert.equal(first.body.messages, [{ role: 'user', content: [{ type: 'image_url', image_url: { url: `data:image/jpeg;base64,${readFileSync(join(work, 'photo.jpg')).toString('base64')}` } }, { type: 'text', text: 'Describe' }] }]);
  assert.equal(second.body.messages.slice(1), [{ role: 'assistant', content: 'A sunny street.' }, { role: 'user', content: 'And the colours?' }]);
  assert.equal(second.body.messages[0], first.body.messages[0], 'the image goes again: the server keeps no conversation');
  assert.is(second.body.temperature, 0);
  term.type('Count forever');
  term.keys('Enter');
  await term.waitFor(/One, two,/);
  term.keys('C-c');
  await term.waitFor(/\(stopped\)/);
  await new Promise((r) => setTimeout(r, 200));
  assert.ok(server.completions[2].aborted, 'Ctrl+C dropped the request');
  term.keys('C-d');
  assert.is(await term.exitCode(), 0);
});

test.run();

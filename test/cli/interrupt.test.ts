// Ctrl-C during generation cancels the request in the engine: the output so far stays valid,
// `done` says "cancelled", and ovis exits 130.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';

test('SIGINT mid-generation ends with a cancelled done event and exit 130', async () => {
  let sent = false;
  const r = await runOvis(['ask', '--model', fixtureDir, '--json', '--max-new-tokens', '40000', '--temperature', '1', '--seed', '1', 'Count forever'], {
    onStdout: (chunk, child) => {
      if (!sent && chunk.includes('"type":"token"')) {
        sent = true;
        child.kill('SIGINT');
      }
    },
  });
  assert.ok(sent, 'tokens were streamed before the interrupt');
  assert.is(r.code, 130, r.stderr);
  const events = jsonLines(r.stdout);
  const done = events.at(-1);
  assert.is(done.type, 'done');
  assert.is(done.finish_reason, 'cancelled');
  assert.ok(done.usage.completion_tokens < 40000);
  assert.ok(events.slice(0, -1).every((e) => e.type === 'token'));
});

test.run();

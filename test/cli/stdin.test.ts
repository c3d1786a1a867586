// The prompt on standard input (`git diff | ovis ask "Summarise this change"`): stdin text, a blank
// line, then the prompt words, exactly (checked on the ids sent to the engine against the chat
// template's encoding); and stdin that is not UTF-8 is refused.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fixtureDir, jsonLines, runOvis } from '../helpers/cli.js';
import { textPromptIds } from '../helpers/prompt.js';
import { withRecorder } from '../helpers/wire.js';

const ask = ['ask', '--model', fixtureDir, '--temperature', '0', '--max-new-tokens', '1', '--json'];
const diff = 'diff --git a/hello.c b/hello.c\n--- a/hello.c\n+++ b/hello.c\n@@ -1 +1 @@\n-int x;\n+long x;\n';

/** Ids sent to the engine and prompt_tokens reported for `ovis ask` with this stdin and these words. */
async function sentIds(input: string | Buffer, words: string[]): Promise<{ ids: number[]; promptTokens: number }> {
  return withRecorder(async (rec) => {
    const r = await runOvis([...ask, ...words], { input, env: rec.env });
    assert.is(r.code, 0, r.stderr);
    return { ids: rec.generates()[0].ids, promptTokens: jsonLines(r.stdout).at(-1).usage.prompt_tokens };
  });
}

test('piped text and prompt words: stdin, a blank line, then the words', async () => {
  const want = await textPromptIds([{ role: 'user', content: `${diff.slice(0, -1)}\n\nSummarise this change` }]);
  // the check can tell one newline from two
  assert.not.equal(await textPromptIds([{ role: 'user', content: `${diff.slice(0, -1)}\nSummarise this change` }]), want);
  const got = await sentIds(diff, ['Summarise', 'this', 'change']);
  assert.equal(got.ids, want);
  assert.is(got.promptTokens, want.length);
});

test('stdin alone is the prompt, without its final newline (CRLF too)', async () => {
  const want = await textPromptIds([{ role: 'user', content: 'What is 17 * 23?' }]);
  const [lf, crlf] = await Promise.all([sentIds('What is 17 * 23?\n', []), sentIds('What is 17 * 23?\r\n', [])]);
  assert.equal(lf.ids, want);
  assert.equal(crlf.ids, want);
});

test('stdin that is not UTF-8 is an input error with a clear message (text and --json)', async () => {
  const latin1 = Buffer.from('caf\xe9 cr\xe8me\n', 'latin1');
  const r = await runOvis(['ask', '--model', fixtureDir, 'Translate'], { input: latin1 });
  assert.is(r.code, 3, r.stderr);
  assert.match(r.stderr, /standard input is not UTF-8 text/);
  assert.is(r.stdout, '');
  const j = await runOvis(['ask', '--model', fixtureDir, '--json'], { input: Buffer.from([0x66, 0xff, 0xfe, 0x0a]) });
  assert.is(j.code, 3, j.stderr);
  assert.equal(jsonLines(j.stdout).map((e) => [e.type, e.code]), [['error', 'input']]);
});

test('a U+FFFD that is really in the UTF-8 text is accepted', async () => {
  const want = await textPromptIds([{ role: 'user', content: 'broken \uFFFD char' }]);
  assert.equal((await sentIds(Buffer.from('broken \uFFFD char\n', 'utf8'), [])).ids, want);
});

test.run();

// Every flag in --help is in the man page and in the bash, zsh and fish completions, as a whole
// flag: `--think-budget` does not count as `--think`.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/main.js';
import { fishDeclares, mentionsFlag } from '../helpers/flags.js';

const root = join(import.meta.dirname, '..', '..');
const man = readFileSync(join(root, 'man', 'ovis.1'), 'utf8').replace(/\\-/g, '-');
const completions = ['ovis.bash', '_ovis', 'ovis.fish'].map((f) => [f, readFileSync(join(root, 'completions', f), 'utf8')] as const);

// `data check` and `data convert` are commands too: their flags count as much as the top level's
const commands = buildProgram().commands.flatMap((c) => [{ name: c.name(), cmd: c }, ...c.commands.map((sub) => ({ name: `${c.name()} ${sub.name()}`, cmd: sub }))]);

for (const { name, cmd } of commands) {
  test(`ovis ${name}: every flag is documented and completed`, () => {
    assert.ok(man.includes(`.B ${name}`), `man page describes ${name}`);
    for (const opt of cmd.options) {
      const flag = opt.long!;
      assert.ok(mentionsFlag(man, flag), `man page lacks ${flag} of ${name}`);
      for (const [file, text] of completions) {
        const bare = flag.replace(/^--/, '');
        const found = file === 'ovis.fish' ? fishDeclares(text, bare) : mentionsFlag(text, flag);
        assert.ok(found, `${file} lacks ${flag} of ${name}`);
      }
    }
  });
}

test('a flag is only found whole, never inside a longer one', () => {
  assert.ok(mentionsFlag('\\fB--think\\fR and --think-budget', '--think'));
  assert.ok(mentionsFlag("'--think[let the model think]'", '--think'));
  assert.ok(mentionsFlag('local opts="--json --think"', '--think'));
  assert.not.ok(mentionsFlag('--think-budget N', '--think'));
  assert.not.ok(mentionsFlag('--no-think', '--think'));
  assert.not.ok(mentionsFlag('--top-p', '--top'));
  assert.ok(fishDeclares("-l think -d 'let the model think'", 'think'));
  assert.not.ok(fishDeclares('-l think-budget -x', 'think'));
  assert.not.ok(fishDeclares('-l no-think', 'think'));
});

test.run();

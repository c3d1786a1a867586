// Every flag in --help is in the man page and in the bash, zsh and fish completions.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildProgram } from '../../src/cli/main.js';

const root = join(import.meta.dirname, '..', '..');
const man = readFileSync(join(root, 'man', 'ovis.1'), 'utf8').replace(/\\-/g, '-');
const completions = ['ovis.bash', '_ovis', 'ovis.fish'].map((f) => [f, readFileSync(join(root, 'completions', f), 'utf8')] as const);

for (const cmd of buildProgram().commands) {
  test(`ovis ${cmd.name()}: every flag is documented and completed`, () => {
    assert.ok(man.includes(`.B ${cmd.name()}`), `man page describes ${cmd.name()}`);
    for (const opt of cmd.options) {
      const flag = opt.long!;
      assert.ok(man.includes(flag), `man page lacks ${flag} of ${cmd.name()}`);
      for (const [file, text] of completions) {
        const bare = flag.replace(/^--/, '');
        const found = file === 'ovis.fish' ? text.includes(`-l ${bare}`) : text.includes(flag);
        assert.ok(found, `${file} lacks ${flag} of ${cmd.name()}`);
      }
    }
  });
}

test.run();

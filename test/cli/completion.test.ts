// `ovis completion bash|zsh|fish` prints the script shipped in completions/, byte for byte, and the
// scripts are valid for their shell (bash always; zsh and fish where installed, else a visible skip).
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root, runOvis } from '../helpers/cli.js';
import { withTempDir } from '../helpers/temp-dirs.js';

const FILES = { bash: 'ovis.bash', zsh: '_ovis', fish: 'ovis.fish' } as const;
const shipped = (shell: keyof typeof FILES) => readFileSync(join(root, 'completions', FILES[shell]), 'utf8');
const installed = (shell: string) => spawnSync(shell, ['-c', 'true']).status === 0;

for (const shell of Object.keys(FILES) as (keyof typeof FILES)[]) {
  test(`ovis completion ${shell} prints completions/${FILES[shell]}`, async () => {
    const r = await runOvis(['completion', shell]);
    assert.is(r.code, 0, r.stderr);
    assert.is(r.stdout, shipped(shell));
    assert.is(r.stderr, '');
  });
}

/** Syntax check of a script file by its own shell: `bash -n`, `zsh -n`, `fish --no-execute`. */
function syntaxCheck(shell: 'bash' | 'zsh' | 'fish', file: string) {
  return spawnSync(shell, [shell === 'fish' ? '--no-execute' : '-n', file], { encoding: 'utf8' });
}

test('the bash script is valid bash (bash -n) and defines the completion', async () => {
  const script = (await runOvis(['completion', 'bash'])).stdout;
  const r = syntaxCheck('bash', join(root, 'completions', FILES.bash));
  assert.is(r.status, 0, r.stderr);
  // and it loads: sourcing it registers _ovis for ovis
  const loaded = spawnSync('bash', ['-c', `${script}\ncomplete -p ovis`], { encoding: 'utf8' });
  assert.is(loaded.status, 0, loaded.stderr);
  assert.match(loaded.stdout, /complete -F _ovis ovis/);
});

test('the syntax check fails on a broken script (the check is real)', async () => {
  await withTempDir('ovis-completion-', (dir) => {
    const broken = join(dir, 'broken');
    writeFileSync(broken, 'if then fi {\n');
    for (const shell of ['bash', 'zsh', 'fish'] as const) {
      if (installed(shell)) assert.is.not(syntaxCheck(shell, broken).status, 0, shell);
    }
  });
});

for (const shell of ['zsh', 'fish'] as const) {
  const here = installed(shell);
  (here ? test : test.skip)(`the ${shell} script is valid ${shell}${here ? '' : ` (skipped: ${shell} is not installed)`}`, () => {
    const r = syntaxCheck(shell, join(root, 'completions', FILES[shell]));
    assert.is(r.status, 0, r.stderr);
  });
}

test('an unknown shell is a usage error naming it', async () => {
  const r = await runOvis(['completion', 'powershell']);
  assert.is(r.code, 2, r.stderr);
  assert.match(r.stderr, /powershell/);
  assert.is(r.stdout, '');
});

test.run();

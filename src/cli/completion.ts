// `ovis completion bash|zsh|fish`: prints the shell completion script shipped in completions/.
import { Command } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { UsageError } from '../errors.js';
import { packageRoot } from '../engine/locate.js';

const FILES: Record<string, string> = { bash: 'ovis.bash', zsh: '_ovis', fish: 'ovis.fish' };

export function completionCommand(): Command {
  return new Command('completion')
    .description('print the completion script for a shell (bash, zsh or fish)')
    .argument('<shell>', 'bash, zsh or fish')
    .action((shell: string) => {
      const file = FILES[shell];
      if (!file) throw new UsageError(`no completion for shell ${JSON.stringify(shell)}: use bash, zsh or fish`);
      process.stdout.write(readFileSync(join(packageRoot, 'completions', file), 'utf8'));
    });
}

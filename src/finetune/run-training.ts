// Runs a training command with its output streaming straight through (stdio inherited: progress
// bars and logs appear as the trainer draws them). Ctrl-C reaches the trainer too, as it shares the
// terminal's process group; ovis waits for it to finish.
import { spawn } from 'node:child_process';
import { EngineError, InterruptedError } from '../errors.js';
import type { TrainCommand } from './swift-command.js';

export function runTraining(cmd: TrainCommand, env: NodeJS.ProcessEnv = process.env): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd.argv[0], cmd.argv.slice(1), { cwd: cmd.cwd, env: { ...env, ...cmd.env }, stdio: 'inherit' });
    child.on('error', (err) => reject(new EngineError(`cannot start ${cmd.argv[0]}: ${err.message}`, 'trainer', { cause: err })));
    child.on('close', (code, signal) => {
      if (code === 0) resolve();
      else if (signal === 'SIGINT' || code === 130) reject(new InterruptedError('training interrupted'));
      else reject(new EngineError(`training failed: ${cmd.argv.slice(0, 2).join(' ')} exited with ${code ?? signal}; see its messages above`, 'trainer'));
    });
  });
}

/** One shell line per argument pair, ready to paste: `VAR=x \` lines, then the command. */
export function formatCommand(cmd: TrainCommand): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, "'\\''")}'`);
  const lines: string[] = Object.entries(cmd.env).map(([k, v]) => `${k}=${q(v)}`);
  const argv = cmd.argv;
  let head = argv.findIndex((a) => a.startsWith('--'));
  if (head < 0) head = argv.length;
  lines.push(argv.slice(0, head).map(q).join(' '));
  for (let i = head; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i].startsWith('--') && !argv[i].includes('=') && next !== undefined && !next.startsWith('--')) {
      lines.push(`  ${q(argv[i])} ${q(next)}`);
      i++;
    } else {
      lines.push(`  ${q(argv[i])}`);
    }
  }
  return (cmd.cwd ? `cd ${q(cmd.cwd)} && \\\n` : '') + lines.join(' \\\n') + '\n';
}

// A command in a pseudo-terminal made by util-linux `script`: of 0×0 cells unless the command sets
// a size with `stty`, which is what some CI and container terminals report.
import { spawn, spawnSync } from 'node:child_process';

export const scriptAvailable = () => spawnSync('script', ['--version']).status === 0;

export interface PtyRun {
  code: number | null;
  /** Everything the terminal received, escape codes included. */
  out: string;
}

/** Runs `command` in a pseudo-terminal; `typing` is sent as keys, in order, once `ready` is seen. */
export function underScript(command: string, opts: { timeoutMs?: number; typing?: Array<{ ready: RegExp; keys: string }> } = {}): Promise<PtyRun> {
  const child = spawn('script', ['-qec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, TERM: 'xterm-256color', NO_COLOR: '', FORCE_COLOR: '' } });
  let out = '';
  const typing = [...(opts.typing ?? [])];
  child.stdout!.on('data', (c: Buffer) => {
    out += c.toString('utf8');
    while (typing.length && typing[0].ready.test(out)) child.stdin!.write(typing.shift()!.keys);
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`${command} did not end in ${opts.timeoutMs ?? 60000} ms; output:\n${out.slice(-2000)}`));
    }, opts.timeoutMs ?? 60000);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, out });
    });
  });
}

// A real terminal for tests: a command in a tmux pane of a chosen size, keys typed with send-keys,
// the screen read with capture-pane. Each session has its own tmux server (socket), so tests never
// see a user's tmux or each other's.
import { execFileSync, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { root } from './cli.js';

let counter = 0;

export function tmuxAvailable(): boolean {
  return spawnSync('tmux', ['-V']).status === 0;
}

export interface TermOptions {
  width?: number;
  height?: number;
  env?: Record<string, string>;
  cwd?: string;
}

export class Term {
  private readonly socket = `ovis-test-${process.pid}-${counter++}`;

  private tmux(args: string[], input?: string): string {
    // The server gets the test's environment without the colour switches a test runner sets.
    const { FORCE_COLOR, NO_COLOR, ...env } = process.env;
    return execFileSync('tmux', ['-L', this.socket, '-f', '/dev/null', ...args], { encoding: 'utf8', input, env });
  }

  /** Runs `command` (a shell command line); its exit status is printed as "[exit N]" when it ends. */
  constructor(command: string, opts: TermOptions = {}) {
    // In the command line rather than tmux's -e: tmux sets TERM itself for the programs of a pane.
    const env = Object.entries({ TERM: 'xterm-256color', LANG: 'C.UTF-8', ...opts.env }).map(([k, v]) => shellQuote(`${k}=${v}`)).join(' ');
    this.tmux(['new-session', '-d', '-x', String(opts.width ?? 100), '-y', String(opts.height ?? 30), '-c', opts.cwd ?? root, `env ${env} ${command}; echo "[exit $?]"; sleep 3600`]);
    this.tmux(['set-option', '-g', 'history-limit', '5000']);
  }

  /** Keys as tmux names them (`Enter`, `C-c`, `Up`) or literal text (`-l`). */
  keys(...keys: string[]): void {
    this.tmux(['send-keys', '-t', '0', ...keys]);
  }

  type(text: string): void {
    this.tmux(['send-keys', '-t', '0', '-l', text]);
  }

  /** Pastes `text` as a terminal does: bracketed when the program asked for it. */
  paste(text: string): void {
    this.tmux(['load-buffer', '-'], text);
    this.tmux(['paste-buffer', '-p', '-d', '-t', '0']);
  }

  /** The screen with its scrollback; `escapes` keeps colours and attributes as escape codes. */
  screen(escapes = false): string {
    return this.tmux(['capture-pane', '-p', '-S', '-5000', ...(escapes ? ['-e'] : []), '-t', '0']);
  }

  /** The foreground process group of the terminal (what Ctrl-C signals). */
  foregroundGroup(): number {
    const panePid = this.tmux(['display-message', '-p', '-t', '0', '#{pane_pid}']).trim();
    return Number(execFileSync('ps', ['-o', 'tpgid=', '-p', panePid], { encoding: 'utf8' }).trim());
  }

  async waitFor(what: RegExp | ((screen: string) => boolean), timeoutMs = 30000): Promise<string> {
    const ok = typeof what === 'function' ? what : (s: string) => what.test(s);
    const end = Date.now() + timeoutMs;
    let last = '';
    while (Date.now() < end) {
      last = this.screen();
      if (ok(last)) return last;
      await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`the terminal never showed ${what}; it shows:\n${last}`);
  }

  /** Waits for the command to end; its exit status. */
  async exitCode(timeoutMs = 30000): Promise<number> {
    const s = await this.waitFor(/\[exit \d+\]/, timeoutMs);
    return Number(/\[exit (\d+)\]/.exec(s)![1]);
  }

  kill(): void {
    spawnSync('tmux', ['-L', this.socket, 'kill-server']);
  }
}

/** The ovis command line for a shell. */
export const ovisCommand = (args: string[]) => [process.execPath, join(root, 'bin', 'ovis.js'), ...args].map(shellQuote).join(' ');

export const shellQuote = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);

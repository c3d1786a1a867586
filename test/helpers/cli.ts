// Runs the built CLI (dist/, through bin/ovis.js) as a real process with the real engine.
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { tempDir } from './temp-dirs.js';

export const root = join(import.meta.dirname, '..', '..');
export const fixtureDir = join(root, 'test', 'fixtures', 'tiny-ovis2.5');

export interface RunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: Record<string, string | undefined>;
  /** Called with each stdout chunk (e.g. to interrupt once tokens flow). */
  onStdout?: (chunk: string, child: ReturnType<typeof spawn>) => void;
  timeoutMs?: number;
}

let emptyHome: string | undefined;

/** Model caches and hub settings for a test run that never sees this machine's own: empty caches
 * (so the default model is not downloaded), no token, offline, and an endpoint nothing answers on.
 * Tests of downloads override them (a loopback hub: test/helpers/hub-server.ts). */
export function isolatedModelEnv(): Record<string, string | undefined> {
  emptyHome ??= tempDir('ovis-no-models-');
  return {
    HF_HOME: join(emptyHome, 'hf'), HF_HUB_CACHE: join(emptyHome, 'hf', 'hub'), HUGGINGFACE_HUB_CACHE: undefined,
    MODELSCOPE_CACHE: join(emptyHome, 'modelscope'), HF_TOKEN: undefined, HF_TOKEN_PATH: undefined,
    HF_HUB_OFFLINE: '1', HF_ENDPOINT: 'http://127.0.0.1:9', OVIS_MODEL: undefined, OVIS_WEIGHTS: undefined,
  };
}

export function runOvis(args: string[], opts: RunOptions = {}): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), ...args], {
      // uvu's runner sets FORCE_COLOR, which makes node warn on stderr about NO_COLOR: drop it
      env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...isolatedModelEnv(), ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c.toString('utf8');
      opts.onStdout?.(c.toString('utf8'), child);
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ovis ${args.join(' ')} did not finish in ${opts.timeoutMs ?? 60000} ms\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 60000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
    child.stdin.end(opts.input ?? '');
  });
}

/** Parses --json output: one object per line. */
export function jsonLines(stdout: string): any[] {
  return stdout.split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
}

/** Environment for runOvis in which the ffmpeg-static package counts as not installed. */
export function withoutFfmpegStatic(env: Record<string, string | undefined> = {}): Record<string, string | undefined> {
  const hide = `--require ${join(root, 'test', 'helpers', 'hide-ffmpeg-static.cjs')}`;
  return { ...env, NODE_OPTIONS: [process.env.NODE_OPTIONS, hide].filter(Boolean).join(' ') };
}

// Starts the real `ovis serve` (the built CLI, through bin/ovis.js) on the fixture model on a free
// loopback port, and waits for its "listening on" line. Tests talk to it over HTTP like any client.
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fixtureDir, isolatedModelEnv, root } from './cli.js';

export interface Served {
  /** The server's base URL, e.g. http://127.0.0.1:40123 (the OpenAI base URL is `${url}/v1`). */
  url: string;
  /** Sends SIGTERM and waits for the process to exit (SIGKILL after 20 s); resolves with its exit code. */
  stop(): Promise<number | null>;
  proc: ChildProcess;
  /** Everything the server wrote on stderr so far. */
  stderr(): string;
}

const READY = /ovis serve: listening on (http:\/\/\S+) \(model /;

/** `args` are added after `serve --model FIXTURE --port 0` (a later --model or --port wins). */
export function startServe(args: string[] = [], opts: { env?: Record<string, string | undefined>; timeoutMs?: number } = {}): Promise<Served> {
  const proc = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'serve', '--model', fixtureDir, '--port', '0', ...args], {
    env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: undefined, ...isolatedModelEnv(), ...opts.env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  let stdout = '';
  const exited = new Promise<number | null>((resolve) => proc.on('exit', (code) => resolve(code)));
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGTERM');
    const timer = setTimeout(() => proc.kill('SIGKILL'), 20_000);
    const code = await exited;
    clearTimeout(timer);
    return code;
  };
  proc.stdout!.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
  return new Promise<Served>((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL');
      reject(new Error(`ovis serve did not listen within ${opts.timeoutMs ?? 90_000} ms\nstderr: ${stderr}`));
    }, opts.timeoutMs ?? 90_000);
    proc.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString('utf8');
      const m = READY.exec(stderr);
      if (m) {
        clearTimeout(timer);
        resolve({ url: m[1], stop, proc, stderr: () => stderr });
      }
    });
    proc.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`ovis serve exited with ${code} before listening\nstderr: ${stderr}\nstdout: ${stdout}`));
    });
  });
}

/** GET a JSON route of the server. */
export async function getJson(url: string): Promise<{ status: number; body: any }> {
  const res = await fetch(url);
  return { status: res.status, body: await res.json() };
}

/** One metric's value from /metrics ('name{labels}' exactly as written there); 0 when absent. */
export async function metric(url: string, series: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line ? Number(line.slice(series.length + 1)) : 0;
}

/** Polls `check` every 50 ms until it is true; throws after `ms`. */
export async function until(what: string, check: () => Promise<boolean>, ms = 20_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

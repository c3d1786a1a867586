// Process inspection through Linux's /proc, to find the engine that an ovis process started and
// to tell whether it is still running (a test must see that no engine is left behind).
import { existsSync, readdirSync, readFileSync } from 'node:fs';

/** Pids of the direct children of `pid` (all its threads' children). */
export function childPids(pid: number): number[] {
  const tasks = `/proc/${pid}/task`;
  if (!existsSync(tasks)) return [];
  const out: number[] = [];
  for (const t of readdirSync(tasks)) {
    try {
      out.push(...readFileSync(`${tasks}/${t}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number));
    } catch {
      // the thread ended while we read
    }
  }
  return out;
}

/** The command line of a process, or '' once it is gone. */
export function commandLine(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ').trim();
  } catch {
    return '';
  }
}

/** True while `pid` exists and is not a zombie (a zombie has ended; only its exit status is left). */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2)[0] !== 'Z';
  } catch {
    return false;
  }
}

/** The engine started by the ovis process `pid` (polls until it appears, up to `ms`). */
export async function engineOf(pid: number, ms = 30000): Promise<number> {
  const until = Date.now() + ms;
  for (;;) {
    const engine = childPids(pid).find((c) => commandLine(c).includes('ovis-engine'));
    if (engine) return engine;
    if (Date.now() > until) throw new Error(`ovis (pid ${pid}) started no engine within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Waits until `pid` is no longer running; false if it still runs after `ms`. */
export async function ended(pid: number, ms: number): Promise<boolean> {
  const until = Date.now() + ms;
  while (isRunning(pid)) {
    if (Date.now() > until) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

// Temporary directories for tests, all removed again: each test removes its own (removeTempDir or
// withTempDir), and whatever is left when the test process exits (a failed assertion skipped the
// removal) is removed by an exit hook, so runs do not pile model copies up in the temp directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made = new Set<string>();
let hooked = false;

/** A new directory under the system temp directory (named `prefix`XXXXXX), removed at exit at the latest. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.add(dir);
  if (!hooked) {
    hooked = true;
    process.on('exit', removeAllTempDirs);
    // Ctrl-C or a kill of the test run skips 'exit': clean up, then die of the same signal.
    for (const signal of ['SIGINT', 'SIGTERM'] as const) {
      process.once(signal, () => {
        removeAllTempDirs();
        process.kill(process.pid, signal);
      });
    }
  }
  return dir;
}

export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  made.delete(dir);
}

/** Runs `fn` with a fresh directory and removes it afterwards, whether `fn` passed or threw. */
export async function withTempDir<T>(prefix: string, fn: (dir: string) => Promise<T> | T): Promise<T> {
  const dir = tempDir(prefix);
  try {
    return await fn(dir);
  } finally {
    removeTempDir(dir);
  }
}

function removeAllTempDirs(): void {
  for (const dir of made) rmSync(dir, { recursive: true, force: true });
  made.clear();
}

// One `ovis pull` of a model at a time: two writers appending to the same blobs/*.incomplete would
// corrupt it. The lock is a file created exclusively, holding the owner's pid; a lock whose owner
// is gone (killed mid-download) is taken over. huggingface_hub's own locks are flock()s on
// .locks/models--ORG--NAME/<etag>.lock, which Node cannot take; this lock sits beside them.
import { mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { InterruptedError } from '../errors.js';

const POLL_MS = 500;

/** Takes the lock of `id` in `cacheDir`, waiting while a live process holds it. Resolves to its release. */
export async function acquirePullLock(cacheDir: string, id: string, signal: AbortSignal, onWait?: (pid: number) => void): Promise<() => Promise<void>> {
  const dir = join(cacheDir, '.locks', `models--${id.split('/').join('--')}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'ovis-pull.lock');
  let told = false;
  for (;;) {
    if (signal.aborted) throw new InterruptedError();
    try {
      writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return async () => rmSync(file, { force: true });
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const text = readOrEmpty(file);
    if (!text && Date.now() - mtimeMs(file) < 2000) {
      // just created, its pid not written yet
      await new Promise((r) => setTimeout(r, 50));
      continue;
    }
    const owner = Number.parseInt(text, 10);
    if (!Number.isInteger(owner) || owner <= 0 || !alive(owner)) {
      rmSync(file, { force: true });
      continue;
    }
    if (!told) onWait?.(owner);
    told = true;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

function readOrEmpty(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function mtimeMs(path: string): number {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return 0;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

// Admission: at most `running` completions hold the engine at once (its --max-batch, so every
// admitted request is in the engine's batch), at most `queued` more wait here in arrival order,
// and beyond that a request is refused at once (429) rather than left to time out.
import { clientClosed, HttpError } from './http-error.js';

export interface Slot {
  /** Gives the slot back (the next waiting request takes it); safe to call twice. */
  release(): void;
}

export class Admission {
  private active = 0;
  private waiting: Array<{ grant: (s: Slot) => void; fail: (e: Error) => void; signal?: AbortSignal; onAbort: () => void }> = [];

  constructor(
    readonly maxRunning: number,
    readonly maxQueued: number,
  ) {}

  get running(): number {
    return this.active;
  }

  get queued(): number {
    return this.waiting.length;
  }

  /** A slot now, or after those ahead; 429 when the queue is full; rejects if `signal` aborts first. */
  acquire(signal?: AbortSignal): Promise<Slot> {
    if (signal?.aborted) return Promise.reject(clientClosed());
    if (this.active < this.maxRunning) return Promise.resolve(this.grant());
    if (this.waiting.length >= this.maxQueued) {
      return Promise.reject(new HttpError(429, `the server is busy: ${this.active} requests running and ${this.waiting.length} waiting (--max-batch ${this.maxRunning}, --max-queue ${this.maxQueued}); retry later`, 'rate_limit_error', null, 'queue_full'));
    }
    return new Promise<Slot>((resolve, reject) => {
      const entry = {
        grant: resolve,
        fail: reject,
        signal,
        onAbort: () => {
          this.waiting = this.waiting.filter((w) => w !== entry);
          reject(clientClosed());
        },
      };
      signal?.addEventListener('abort', entry.onAbort, { once: true });
      this.waiting.push(entry);
    });
  }

  /** Fails every waiting request (the server is shutting down). */
  rejectWaiting(err: Error): void {
    for (const w of this.waiting.splice(0)) {
      w.signal?.removeEventListener('abort', w.onAbort);
      w.fail(err);
    }
  }

  private grant(): Slot {
    this.active += 1;
    let released = false;
    return {
      release: () => {
        if (released) return;
        released = true;
        this.active -= 1;
        const next = this.waiting.shift();
        if (next) {
          next.signal?.removeEventListener('abort', next.onAbort);
          next.grant(this.grant());
        }
      },
    };
  }
}

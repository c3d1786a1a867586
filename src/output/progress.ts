// What a long wait is doing, on stderr: the phase (loading the model, preparing an image, encoding
// it, reading the prompt) and the seconds it has taken so far. One redrawn line on a terminal;
// nothing when stderr is not one, is TERM=dumb, or reports no size (a 0×0 pseudo-terminal, where
// ora, used before, divided by the width and wrote escape codes forever); log lines under --verbose.
// Hand-written instead of ora for that reason: one line, clipped to the width, never wrapped.
import type { ProgressEvent } from '../protocol/index.js';
import type { EncodeClock } from '../session/encode-estimate.js';

export interface Progress {
  /** Starts a new phase (its clock starts now). */
  phase(text: string): void;
  /** The engine's step before the first token, shown as the current phase. */
  engine(p: ProgressEvent, what: string): void;
  /** Clears the line (the answer is about to be printed). */
  stop(): void;
  /** Text shown before the phase, e.g. a batch's "3/10 files · ETA 20 s". */
  prefix?: string;
  /** The running encode's estimate: vision steps then show "37% · ~25 s left". */
  encodeClock?: EncodeClock;
}

/** A terminal that can show a line being redrawn: a TTY with a known, non-zero width, not dumb. */
export function canRedraw(stream: NodeJS.WritableStream, env: NodeJS.ProcessEnv = process.env): boolean {
  const tty = stream as NodeJS.WriteStream;
  return tty.isTTY === true && (tty.columns ?? 0) > 0 && env.TERM !== 'dumb';
}

/** Shows nothing (no terminal, or a screen someone else draws). */
export const silentProgress: Progress = { phase() {}, engine() {}, stop() {} };

export function createProgress(opts: { verbose?: boolean; stream?: NodeJS.WritableStream } = {}): Progress {
  const stream = opts.stream ?? process.stderr;
  if (opts.verbose) return new LogProgress(stream);
  // A copy: the caller may set its prefix and encode clock.
  if (!canRedraw(stream)) return { ...silentProgress };

  return new SpinnerProgress(stream);
}

const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

/**
 * "encoding the image · layer 12/27" (with an estimate: "encoding the image · 45% · ~20 s left") or
 * "reading the prompt · 1,024/3,210 positions".
 */
export function describeStep(p: ProgressEvent, what: string, clock?: EncodeClock): string {
  if (p.phase === 'vision') {
    if (clock) return `encoding ${what} · ${clock.describe()}`;
    return p.done === 0 ? `encoding ${what}` : `encoding ${what} · layer ${p.done}/${p.total}`;
  }
  const n = (v: number) => v.toLocaleString('en-US');
  return p.total > 512 ? `reading the prompt · ${n(p.done)}/${n(p.total)} positions` : `reading the prompt (${n(p.total)} positions)`;
}

const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

class SpinnerProgress implements Progress {
  prefix?: string;
  encodeClock?: EncodeClock;
  /** Redrawn every frame: an encode's time left counts down between the engine's layer reports. */
  private text = () => '';
  private since = performance.now();
  private enginePhase = '';
  private frame = 0;
  private timer?: NodeJS.Timeout;

  constructor(private stream: NodeJS.WritableStream) {}

  phase(text: string): void {
    this.since = performance.now();
    this.enginePhase = '';
    this.show(() => text);
  }

  engine(p: ProgressEvent, what: string): void {
    // A new phase restarts the clock; steps within a phase keep it.
    if (p.phase !== this.enginePhase) this.since = performance.now();
    this.enginePhase = p.phase;
    const clock = p.phase === 'vision' ? this.encodeClock : undefined;
    clock?.layer(p.done, p.elapsed_ms);
    this.show(() => describeStep(p, what, clock));
  }

  private show(text: () => string): void {
    this.text = text;
    if (!this.timer) {
      this.timer = setInterval(() => this.render(), 80);
      // The line never keeps ovis alive on its own.
      this.timer.unref();
    }
    this.render();
  }

  private render(): void {
    const columns = (this.stream as NodeJS.WriteStream).columns ?? 0;
    // Resized to nothing meanwhile: draw nothing rather than wrap.
    if (columns <= 0) return;
    this.frame = (this.frame + 1) % FRAMES.length;
    const line = `${FRAMES[this.frame]} ${this.prefix ? `${this.prefix} · ` : ''}${this.text()} · ${seconds(performance.now() - this.since)}`;
    this.stream.write(`\r${[...line].slice(0, columns - 1).join('')}\x1b[K`);
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.stream.write('\r\x1b[K');
  }
}

/** --verbose: one line per phase with its start time, beside the engine's own log lines. */
class LogProgress implements Progress {
  private start = performance.now();
  private last = '';

  constructor(private stream: NodeJS.WritableStream) {}

  phase(text: string): void {
    this.line(text);
  }

  engine(p: ProgressEvent, what: string): void {
    // One line per phase, not per layer or chunk.
    if (p.phase === this.last) return;
    this.last = p.phase;
    this.line(describeStep(p, what));
  }

  private line(text: string): void {
    this.stream.write(`[${seconds(performance.now() - this.start)}] ${text}\n`);
  }

  stop(): void {}
}

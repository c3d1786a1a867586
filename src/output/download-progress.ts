// A download's progress on stderr: one redrawn line on a terminal (bar, bytes, rate, ETA), plain
// lines every tenth of the way (or half a minute) when stderr is a file or a pipe, so that a log
// shows it advancing without drowning in it.
import { canRedraw } from './progress.js';

export interface DownloadState {
  /** Bytes present so far, of `total`; `resumed` of them were there before this run. */
  done: number;
  total: number;
  resumed: number;
}

export interface DownloadProgress {
  update(s: DownloadState): void;
  /** Clears the line (the caller prints the outcome). */
  stop(): void;
}

/** 1.2 GB, 340 MB, 12 kB: decimal units, as the hub shows sizes. */
export function formatBytes(n: number): string {
  if (n < 1000) return `${Math.round(n)} B`;
  const units = ['kB', 'MB', 'GB', 'TB'];
  let v = n;
  let u = -1;
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000;
    u += 1;
  }
  return `${v >= 100 ? v.toFixed(0) : v.toFixed(1)} ${units[u]}`;
}

/** 45 s, 3 min 20 s, 1 h 05 min. */
export function formatDuration(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** Bytes per second over the last few seconds (a fresh rate, not the average since the start). */
class Rate {
  private samples: { t: number; bytes: number }[] = [];
  constructor(private windowMs = 5000) {}
  add(t: number, bytes: number): void {
    this.samples.push({ t, bytes });
    while (this.samples.length > 2 && t - this.samples[1].t > this.windowMs) this.samples.shift();
  }
  get perSecond(): number | undefined {
    const first = this.samples[0];
    const last = this.samples[this.samples.length - 1];
    if (!first || last.t - first.t < 500) return undefined;
    return ((last.bytes - first.bytes) * 1000) / (last.t - first.t);
  }
}

/** "52%  2.3/4.4 GB  48 MB/s  ETA 45 s" (rate and ETA once measurable). */
function describe(s: DownloadState, rate: number | undefined): string {
  const pct = s.total ? Math.floor((100 * s.done) / s.total) : 100;
  const parts = [`${pct}%`, `${formatBytes(s.done)}/${formatBytes(s.total)}`];
  if (rate !== undefined && rate > 0) parts.push(`${formatBytes(rate)}/s`, `ETA ${formatDuration((s.total - s.done) / rate)}`);
  return parts.join('  ');
}

export function createDownloadProgress(label: string, stream: NodeJS.WritableStream = process.stderr): DownloadProgress {
  return canRedraw(stream) ? new BarProgress(label, stream as NodeJS.WriteStream) : new LineProgress(label, stream);
}

class BarProgress implements DownloadProgress {
  private rate = new Rate();
  private last = 0;
  private state?: DownloadState;
  private drawn = false;

  constructor(private label: string, private stream: NodeJS.WriteStream) {}

  update(s: DownloadState): void {
    this.state = s;
    const now = performance.now();
    this.rate.add(now, s.done);
    // at most ten redraws a second, but always the last
    if (now - this.last < 100 && s.done < s.total) return;
    this.last = now;
    this.draw();
  }

  private draw(): void {
    const s = this.state!;
    const width = this.stream.columns ?? 80;
    const text = describe(s, this.rate.perSecond);
    const room = width - this.label.length - text.length - 6;
    const barWidth = Math.min(30, room);
    let line = `${this.label}  ${text}`;
    if (barWidth >= 10) {
      const filled = s.total ? Math.round((barWidth * s.done) / s.total) : barWidth;
      line = `${this.label}  ${'█'.repeat(filled)}${'░'.repeat(barWidth - filled)}  ${text}`;
    }
    this.stream.write(`\r${[...line].slice(0, width - 1).join('')}\x1b[K`);
    this.drawn = true;
  }

  stop(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}

class LineProgress implements DownloadProgress {
  private rate = new Rate();
  private lastTenth = -1;
  private lastAt = 0;

  constructor(private label: string, private stream: NodeJS.WritableStream) {}

  update(s: DownloadState): void {
    const now = performance.now();
    this.rate.add(now, s.done);
    const tenth = s.total ? Math.floor((10 * s.done) / s.total) : 10;
    if (this.lastTenth < 0) {
      this.lastTenth = tenth;
      this.lastAt = now;
      return;
    }
    if (tenth > this.lastTenth || now - this.lastAt > 30_000) {
      this.lastTenth = tenth;
      this.lastAt = now;
      this.stream.write(`${this.label}: ${describe(s, this.rate.perSecond)}\n`);
    }
  }

  stop(): void {}
}

// The `stop` strings of a request, matched on the answer text as it streams. Text that could be
// the start of a stop string is held back until the next piece decides it, so a stop string never
// reaches the client, even split across tokens.
export class StopFilter {
  private held = '';
  private readonly longest: number;
  stopped = false;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Text safe to send now; sets `stopped` when a stop string appeared (the text before it is returned). */
  push(text: string): string {
    if (this.stopped) return '';
    if (this.stops.length === 0) return text;
    this.held += text;
    let cut = -1;
    for (const s of this.stops) {
      const at = this.held.indexOf(s);
      if (at >= 0 && (cut < 0 || at < cut)) cut = at;
    }
    if (cut >= 0) {
      this.stopped = true;
      const out = this.held.slice(0, cut);
      this.held = '';
      return out;
    }
    // Keep the last longest−1 characters: a stop string may begin among them.
    const safe = Math.max(0, this.held.length - (this.longest - 1));
    const out = this.held.slice(0, safe);
    this.held = this.held.slice(safe);
    return out;
  }

  /** At the end of generation: what was held back. */
  flush(): string {
    const out = this.stopped ? '' : this.held;
    this.held = '';
    return out;
  }
}

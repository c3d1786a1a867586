// The `stop` strings of a request, matched on the answer text as it streams. Text that could be
// the start of a stop string is held back until the next piece decides it, so a stop string never
// reaches the client, even split across tokens.
export class StopFilter {
  private held = '';
  stopped = false;

  constructor(private readonly stops: readonly string[]) {}

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
    // Hold back the longest tail that is the start of a stop string: the next piece decides it.
    const safe = this.held.length - this.partialTail();
    const out = this.held.slice(0, safe);
    this.held = this.held.slice(safe);
    return out;
  }

  private partialTail(): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let k = Math.min(s.length - 1, this.held.length); k > hold; k--) {
        if (this.held.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  }

  /** At the end of generation: what was held back. */
  flush(): string {
    const out = this.stopped ? '' : this.held;
    this.held = '';
    return out;
  }
}

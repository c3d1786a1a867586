// Ctrl-C and SIGTERM while the engine generates: the first cancels the request (the engine answers
// `done` with "cancelled" and the output so far stays valid), a second Ctrl-C kills the engine.
// The engine runs in its own process group, so only ovis receives the terminal's signals.
export class Interrupts {
  readonly controller = new AbortController();
  /** The first signal received, if any. */
  signal?: 'SIGINT' | 'SIGTERM';
  /** A second signal killed the engine: its request ends as cancelled, not as an engine failure. */
  engineKilled = false;
  private count = 0;
  private readonly onInt = () => this.on('SIGINT');
  private readonly onTerm = () => this.on('SIGTERM');

  constructor(private readonly killEngine: () => void) {
    process.on('SIGINT', this.onInt);
    process.on('SIGTERM', this.onTerm);
  }

  get abortSignal(): AbortSignal {
    return this.controller.signal;
  }

  private on(signal: 'SIGINT' | 'SIGTERM'): void {
    this.count += 1;
    this.signal ??= signal;
    if (this.count > 1) {
      this.engineKilled = true;
      this.killEngine();
    }
    this.controller.abort();
  }

  dispose(): void {
    process.off('SIGINT', this.onInt);
    process.off('SIGTERM', this.onTerm);
  }
}

// Keeps one engine process serving the model: started at launch, and when it dies (a crash, a
// kill, a device fault) started again with the same model while the requests it was running fail
// with 503. `generation` counts the engines started, so the session pool can tell that the KV
// caches it knew of are gone.
import { EngineProcess } from '../engine/engine-process.js';
import type { Logger } from '../output/logger.js';
import type { ModelInfo } from '../protocol/index.js';
import { unavailable } from './http-error.js';

export interface SupervisorOptions {
  modelDir: string;
  device: string;
  /** A LoRA adapter directory merged at load (`--lora`), absolute; kept for every restart. */
  lora?: string;
  /** CPU arithmetic (`--precision`); kept for every restart. */
  precision?: 'f32' | 'bf16';
  /** bf16 | int8 | int4 (`--weights`); kept for every restart. */
  weights?: string;
  /** `ovis-engine serve` arguments (--max-batch, --kv-memory). */
  serveArgs: string[];
  log: Logger;
  /** Called each time a dead engine is being replaced. */
  onRestart?: () => void;
}

const MAX_BACKOFF_MS = 30_000;

export class EngineSupervisor {
  private current?: EngineProcess;
  private closing = false;
  private failures = 0;
  /** Set while a replacement engine is starting. */
  private restarting?: Promise<void>;
  info?: ModelInfo;
  generation = 0;
  /** Why the engine is not serving, while it is not. */
  lastError?: string;

  constructor(private readonly opts: SupervisorOptions) {}

  /** Starts the first engine; its failure (a broken model, a missing binary) is the caller's. */
  async start(): Promise<void> {
    this.current = await this.launch();
  }

  get ready(): boolean {
    return !!this.current?.running && !this.restarting;
  }

  get pid(): number | undefined {
    return this.current?.pid;
  }

  /** The engine to send a request to, or a 503 while it restarts. */
  engine(): EngineProcess {
    if (!this.ready) throw unavailable(`the engine is restarting${this.lastError ? ` (${this.lastError.split('\n')[0]})` : ''}; try again shortly`);
    return this.current!;
  }

  /** Lets running requests end (the engine serves what it received), then stops it. */
  async close(): Promise<void> {
    this.closing = true;
    await this.restarting?.catch(() => {});
    await this.current?.close(10_000);
  }

  private async launch(): Promise<EngineProcess> {
    const { log } = this.opts;
    // An engine that exits before it is the current one (while starting) is the launcher's failure.
    let started: EngineProcess | undefined;
    const engine = await EngineProcess.start({
      serveArgs: this.opts.serveArgs,
      onLog: (l) => log.verbose(`engine: ${l}`),
      onExit: (err) => this.onExit(started, err),
    });
    started = engine;
    try {
      this.info = await engine.loadModel(this.opts.modelDir, this.opts.device, this.opts.lora, this.opts.precision, this.opts.weights);
    } catch (e) {
      await engine.close();
      throw e;
    }
    this.generation += 1;
    return engine;
  }

  private onExit(engine: EngineProcess | undefined, err: Error): void {
    if (this.closing || !engine || engine !== this.current) return;
    this.lastError = err.message;
    this.opts.log.warn(`${err.message.split('\n')[0]}; starting the engine again`);
    this.opts.onRestart?.();
    this.restarting = this.relaunch();
  }

  private async relaunch(): Promise<void> {
    while (!this.closing) {
      try {
        this.current = await this.launch();
        this.failures = 0;
        this.lastError = undefined;
        this.opts.log.info(`ovis serve: the engine is serving again (pid ${this.current.pid})`);
        break;
      } catch (e) {
        this.failures += 1;
        this.lastError = (e as Error).message;
        const wait = Math.min(MAX_BACKOFF_MS, 500 * 2 ** this.failures);
        this.opts.log.warn(`the engine did not start again (${this.lastError.split('\n')[0]}); retrying in ${wait / 1000} s`);
        await new Promise((r) => setTimeout(r, wait));
      }
    }
    this.restarting = undefined;
  }
}

// Spawns and supervises the engine (execa), multiplexes requests by id over the frame protocol,
// and keeps the engine's last stderr lines for error reports.
import { execa, type ResultPromise } from 'execa';
import { EngineError, ModelError, InputError, OvisError } from '../errors.js';
import {
  FrameDecoder, FrameError, Kind, encodeCancel, encodeCloseSession, encodeGenerate, encodeHello, encodeLoadModel, encodeShutdown,
  type DoneEvent, type ErrorEvent, type Frame, type GenerateRequest, type HelloOk, type ModelInfo, type ProgressEvent, type TokenEvent,
} from '../protocol/index.js';
import { locateEngine } from './locate.js';

const STDERR_LINES = 20;

/** The engine's exit status after a device fault (native/src/error.rs EXIT_DEVICE_FAULT; docs/protocol.md,
 * "Device faults"): the GPU's CUDA context is lost, the engine reported the fault once as `device_error`
 * and exited; a new engine (the command run again) gets a fresh context. */
export const ENGINE_EXIT_DEVICE_FAULT = 75;

/** How long a `device_error` answer waits for the engine to exit with ENGINE_EXIT_DEVICE_FAULT (the engine
 * exits right after sending it when it was a fault) before it is reported as a plain device error. */
const FAULT_EXIT_GRACE_MS = 1000;

/** The CLI's words for an engine that exited after a device fault; `detail` is the engine's own message. */
export function deviceFaultMessage(detail: string | undefined): string {
  const what = (detail ?? '')
    .replace(/^the GPU faulted: /, '')
    .replace(/; its CUDA context cannot be used again.*$/s, '')
    .trim();
  return `the GPU faulted (${what || `the engine exited with status ${ENGINE_EXIT_DEVICE_FAULT}`}); run the command again to restart the engine`;
}

interface Pending {
  onToken?: (t: TokenEvent) => void;
  onProgress?: (p: ProgressEvent) => void;
  resolve: (v: any) => void;
  reject: (e: Error) => void;
}

export interface EngineOptions {
  binary?: string;
  /** Called with each engine log line (stderr), e.g. for --verbose. */
  onLog?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Arguments after `serve`, e.g. ['--max-batch', '16', '--kv-memory', '4G'] (`ovis serve`). */
  serveArgs?: string[];
  /** Called once when the engine process has exited, with what every pending request failed with. */
  onExit?: (err: Error) => void;
}

/** Maps an engine error frame to the CLI's error class (and so its exit code). */
export function errorFromFrame(e: ErrorEvent): OvisError {
  switch (e.code) {
    case 'model_error': return new ModelError(e.message);
    case 'context_overflow': return new InputError(e.message);
    default: return new EngineError(`engine: ${e.message} (${e.code})`, e.code);
  }
}

export class EngineProcess {
  private proc: ResultPromise;
  private decoder = new FrameDecoder();
  private pending = new Map<number, Pending>();
  private handshake?: Pending;
  private nextId = 1;
  private stderrTail: string[] = [];
  private exited = false;
  private exitError?: Error;
  /** Set once the engine wrote something that is not a frame: every later request fails with it. */
  private broken?: EngineError;
  /** Requests answered with `device_error`, held until the engine exits (a fault) or the grace ends. */
  private held = new Map<number, { p: Pending; err: OvisError; timer: NodeJS.Timeout }>();
  /** The message of the last `device_error` answer (the detail of a device fault). */
  private lastDeviceError?: string;
  hello?: HelloOk;
  private onExitHook?: (err: Error) => void;

  private constructor(binary: string, opts: EngineOptions) {
    // `detached`: the engine leads its own process group, so a Ctrl-C typed in the terminal (sent to
    // the whole foreground group) reaches only ovis, which cancels the request; the engine then
    // finishes cleanly. It still exits when ovis goes: its stdin closes.
    this.onExitHook = opts.onExit;
    this.proc = execa(binary, ['serve', ...(opts.serveArgs ?? [])], { stdin: 'pipe', stdout: 'pipe', stderr: 'pipe', buffer: false, reject: false, env: opts.env, detached: true });
    this.proc.stdout!.on('data', (chunk: Buffer) => this.onData(chunk));
    let partial = '';
    this.proc.stderr!.on('data', (chunk: Buffer) => {
      const lines = (partial + chunk.toString('utf8')).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        this.stderrTail.push(line);
        if (this.stderrTail.length > STDERR_LINES) this.stderrTail.shift();
        opts.onLog?.(line);
      }
    });
    this.proc.stdin!.on('error', () => {}); // a dead engine is reported through `exit`
    this.proc.then((r) => this.onExit(r.exitCode, r.signal), (e) => this.onExit(undefined, String(e)));
  }

  /** Starts the engine and completes the version handshake. */
  static async start(opts: EngineOptions = {}): Promise<EngineProcess> {
    const engine = new EngineProcess(opts.binary ?? locateEngine(opts.env), opts);
    engine.hello = await new Promise<HelloOk>((resolve, reject) => {
      engine.handshake = { resolve, reject };
      engine.write(encodeHello('ovis/0.1.0'));
    });
    return engine;
  }

  /** `lora`: a LoRA adapter directory merged into the weights at load; `precision`: the CPU arithmetic; `weights`: bf16 | int8 | int4. */
  async loadModel(modelDir: string, device: string, lora?: string, precision?: 'f32' | 'bf16', weights?: string): Promise<ModelInfo> {
    const id = this.nextId++;
    const loaded = await this.request<{ info: ModelInfo }>(id, encodeLoadModel(id, modelDir, device, lora, precision, weights));
    return loaded.info;
  }

  /** Runs one generation; tokens stream to `onToken`, steps before the first to `onProgress`; resolves with the done event. */
  generate(
    req: Omit<GenerateRequest, 'id'>, ids: Int32Array, pixels: Float32Array[], onToken: (t: TokenEvent) => void, onProgress?: (p: ProgressEvent) => void,
  ): { id: number; done: Promise<DoneEvent> } {
    const id = this.nextId++;
    const done = this.request<DoneEvent>(id, encodeGenerate({ ...req, id }, ids, pixels), onToken, onProgress);
    return { id, done };
  }

  /** The engine's process id (undefined if it could not be spawned). */
  get pid(): number | undefined {
    return this.proc.pid;
  }

  /** True once the engine process has exited (a later request fails at once). */
  get running(): boolean {
    return !this.exited && !this.broken;
  }

  cancel(id: number): void {
    if (!this.exited) this.write(encodeCancel(id));
  }

  closeSession(session: string): void {
    if (!this.exited) this.write(encodeCloseSession(session));
  }

  /** Asks the engine to exit and waits for it (kills it after `graceMs`). */
  async close(graceMs = 2000): Promise<void> {
    if (this.exited) return;
    this.write(encodeShutdown());
    this.proc.stdin!.end();
    const timer = setTimeout(() => this.proc.kill('SIGKILL'), graceMs);
    await this.proc.catch(() => {});
    clearTimeout(timer);
  }

  kill(): void {
    this.proc.kill('SIGKILL');
  }

  recentLogs(): string[] {
    return [...this.stderrTail];
  }

  private request<T>(id: number, frame: Buffer, onToken?: (t: TokenEvent) => void, onProgress?: (p: ProgressEvent) => void): Promise<T> {
    if (this.broken) return Promise.reject(this.broken);
    if (this.exited) return Promise.reject(this.exitError ?? new EngineError('the engine is not running'));
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve, reject, onToken, onProgress });
      this.write(frame);
    });
  }

  private write(frame: Buffer): void {
    this.proc.stdin!.write(frame);
  }

  private onData(chunk: Buffer): void {
    if (this.broken) return;
    let frames: Frame[];
    try {
      frames = this.decoder.push(chunk);
    } catch (e) {
      // Frames before the bad one are still answers; after it the stream cannot be trusted.
      for (const f of (e as FrameError).frames ?? []) this.dispatch(f);
      this.broken = new EngineError(`the engine wrote an unreadable frame: ${(e as Error).message}`);
      this.failAll(this.broken);
      this.kill();
      return;
    }
    for (const f of frames) this.dispatch(f);
  }

  private dispatch(f: Frame): void {
    const h = f.header as any;
    if (f.kind === Kind.helloOk) {
      this.handshake?.resolve(h);
      this.handshake = undefined;
      return;
    }
    if (f.kind === Kind.sessionClosed) return;
    const p = typeof h.id === 'number' ? this.pending.get(h.id) : undefined;
    if (f.kind === Kind.token) return p?.onToken?.(h as TokenEvent);
    if (f.kind === Kind.progress) return p?.onProgress?.(h as ProgressEvent);
    if (f.kind === Kind.error) {
      const err = errorFromFrame(h as ErrorEvent);
      if (h.code === 'device_error') this.lastDeviceError = String(h.message);
      if (p && h.code === 'device_error') {
        // A device fault is followed at once by the engine's exit with ENGINE_EXIT_DEVICE_FAULT: wait for
        // it, so that the request fails with what that means (onExit); else it was a plain device error.
        this.pending.delete(h.id);
        const timer = setTimeout(() => {
          this.held.delete(h.id);
          p.reject(err);
        }, FAULT_EXIT_GRACE_MS);
        this.held.set(h.id, { p, err, timer });
        return;
      }
      if (p) {
        this.pending.delete(h.id);
        return p.reject(err);
      }
      if (this.handshake) return this.handshake.reject(err);
      this.stderrTail.push(`engine error: ${h.message} (${h.code})`);
      return;
    }
    if (p && (f.kind === Kind.done || f.kind === Kind.modelLoaded)) {
      this.pending.delete(h.id);
      p.resolve(h);
    }
  }

  private onExit(code: number | undefined, signal: string | undefined): void {
    this.exited = true;
    if (!signal && code === ENGINE_EXIT_DEVICE_FAULT) {
      // The GPU faulted: the engine said so once (device_error) and exited; a new engine starts clean.
      this.exitError = new EngineError(deviceFaultMessage(this.lastDeviceError), 'device_error');
      for (const { p, timer } of this.held.values()) {
        clearTimeout(timer);
        p.reject(this.exitError);
      }
      this.held.clear();
    } else {
      const tail = this.stderrTail.filter((l) => l.trim()).slice(-8).join('\n  ');
      const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      this.exitError = new EngineError(`the engine ${how}${tail ? `; its last messages:\n  ${tail}` : ''}`);
    }
    this.failAll(this.exitError);
    this.onExitHook?.(this.exitError);
  }

  private failAll(err: Error): void {
    this.handshake?.reject(err);
    this.handshake = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    // Device errors waiting for a fault exit that did not come (another exit, a broken stream): as they are.
    for (const { p, err: own, timer } of this.held.values()) {
      clearTimeout(timer);
      p.reject(own);
    }
    this.held.clear();
  }
}

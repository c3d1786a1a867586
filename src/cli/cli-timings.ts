// The command line's own time before the engine's timings begin, so a slow run can be explained:
// Node's start until the command runs, engine start + model load, tokenizer load, media preparation.
export interface CliTimingsJson {
  startup_ms: number;
  model_load_ms: number;
  tokenizer_ms: number;
  media_ms: number;
  wall_ms: number;
}

export class CliTimings {
  /** Milliseconds since the process started (performance's time origin) when the command began. */
  readonly startup = performance.now();
  modelLoad = 0;
  tokenizer = 0;
  media = 0;

  /** Times `work` and adds its milliseconds to `key`. */
  async time<T>(key: 'modelLoad' | 'tokenizer' | 'media', work: Promise<T> | (() => Promise<T>)): Promise<T> {
    const t = performance.now();
    try {
      return await (typeof work === 'function' ? work() : work);
    } finally {
      this[key] += performance.now() - t;
    }
  }

  json(): CliTimingsJson {
    const r = (v: number) => Math.round(v * 10) / 10;
    return { startup_ms: r(this.startup), model_load_ms: r(this.modelLoad), tokenizer_ms: r(this.tokenizer), media_ms: r(this.media), wall_ms: r(performance.now()) };
  }

  describe(): string {
    const j = this.json();
    return `ovis: start ${j.startup_ms} ms, engine + model ${j.model_load_ms} ms, tokenizer ${j.tokenizer_ms} ms, media ${j.media_ms} ms, wall ${j.wall_ms} ms`;
  }
}

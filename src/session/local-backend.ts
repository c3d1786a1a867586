// The engine on this machine as a Backend: the prompt encoded with the model's tokenizer, each
// session's KV cache reused for the prefix it shares with the last request (SessionCache), the
// engine started again if it died, the thinking budget done in two phases (answer.ts).
import { InputError } from '../errors.js';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { Logger } from '../output/logger.js';
import type { Progress } from '../output/progress.js';
import type { PromptBuilder } from '../prompt/index.js';
import { CliTimings } from '../cli/cli-timings.js';
import { detokenizerFor } from '../cli/detokenizer.js';
import { samplingFrom } from '../cli/sampling.js';
import { startEngine, startModel, type LoadedEngine } from '../cli/start-engine.js';
import { runAnswer } from './answer.js';
import type { AnswerRequest, Backend, BackendInfo } from './backend.js';
import { visionCostOf } from './encode-estimate.js';
import { SessionCache } from './session-cache.js';
import type { TurnHooks, TurnResult } from './turn.js';

export interface LocalOptions {
  device: string;
  verbose: boolean;
  /** A LoRA adapter directory merged into the weights at load (`--lora`), kept for a restart. */
  lora?: string;
  /** CPU arithmetic (`--precision`), kept for a restart. */
  precision?: 'f32' | 'bf16';
  /** bf16 | int8 | int4 (`--weights`), kept for a restart. */
  weights?: string;
  /** Shows "loading the model" when the engine is started again after a crash. */
  restartProgress: Progress;
  /** Warn when the engine is started again (the chat does; --each shows the loading phase). */
  warnOnRestart?: string;
  /** What to do about a prompt longer than the context, after "…context is N": e.g. ": /clear". */
  contextHint?: string;
}

export class LocalBackend implements Backend {
  private readonly caches = new Map<string, SessionCache>();
  lastPromptTokens = 0;

  private constructor(
    private engine: LoadedEngine,
    private readonly prompts: PromptBuilder,
    private readonly modelDir: string,
    readonly defaults: GenerationDefaults,
    private readonly opts: LocalOptions,
    private readonly log: Logger,
  ) {}

  /** Loads the model into a new engine (the tokenizer read meanwhile); `progress` is left running. */
  static async start(modelDir: string, defaults: GenerationDefaults, opts: LocalOptions, log: Logger, progress: Progress, timings = new CliTimings()): Promise<LocalBackend> {
    const { engine, tokenizer } = await startModel(modelDir, opts, log, progress, timings);
    try {
      return new LocalBackend(engine, await tokenizer, modelDir, defaults, opts, log);
    } catch (e) {
      progress.stop();
      await engine.close();
      throw e;
    }
  }

  get info(): BackendInfo {
    const i = this.engine.info!;
    return { backend: i.backend, device: i.device, maxPositions: i.llm.max_positions, vision: visionCostOf(i) };
  }

  contextUsed(session: string): number {
    return this.caches.get(session)?.length ?? 0;
  }

  async answer(req: AnswerRequest, hooks: TurnHooks): Promise<TurnResult> {
    const cache = this.cacheFor(req.session);
    if (!this.engine.running) {
      if (this.opts.warnOnRestart) this.log.warn(this.opts.warnOnRestart);
      for (const c of this.caches.values()) c.clear();
      this.engine = await startEngine(this.modelDir, this.opts, this.log, this.opts.restartProgress);
    }
    const loaded = req.media.map((a) => a.loaded);
    const { ids } = this.prompts.encode(req.messages, { enableThinking: req.think, grids: loaded.map((m) => m.grid), kinds: loaded.map((m) => m.kind) });
    this.lastPromptTokens = ids.length;
    this.log.verbose(`prompt: ${ids.length} positions, ${loaded.length} media`);
    const max = this.info.maxPositions!;
    if (ids.length >= max) {
      throw new InputError(`the conversation needs ${ids.length.toLocaleString('en-US')} positions but the model's context is ${max.toLocaleString('en-US')}${this.opts.contextHint ?? ''}`);
    }
    // Only what the session's cache does not hold is prefilled; media before `keep` are cached too.
    const keep = cache.keepFor(ids, loaded);
    const fresh = loaded.slice(SessionCache.mediaBefore(ids, keep));
    if (fresh.length > 0) hooks.onEncodeStart?.(fresh);
    let result: TurnResult;
    try {
      result = await runAnswer(this.engine, detokenizerFor(this.prompts), {
        session: req.session, keep, ids: ids.slice(keep), media: fresh.map((m) => ({ kind: m.kind, grid: m.grid })), pixels: fresh.map((m) => m.pixels),
        maxNewTokens: req.maxNewTokens, sampling: samplingFrom(req.sampling, this.defaults), stopIds: this.defaults.stopIds,
        topLogprobs: req.topLogprobs, thinking: req.think,
      }, hooks, req.thinkBudget);
    } catch (e) {
      if (this.engine.running) cache.truncate(keep);
      else cache.clear();
      throw e;
    }
    cache.set(Int32Array.from([...ids, ...result.ids]), loaded, keep + result.cached);
    return result;
  }

  kill(): void {
    this.engine.kill();
  }

  close(): Promise<void> {
    return this.engine.close();
  }

  private cacheFor(session: string): SessionCache {
    let c = this.caches.get(session);
    if (!c) this.caches.set(session, (c = new SessionCache()));
    return c;
  }
}

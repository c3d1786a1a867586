// Starts the engine and loads the model, showing the phase on a terminal while it loads.
import { resolve } from 'node:path';
import { EngineProcess } from '../engine/engine-process.js';
import { PromptBuilder } from '../prompt/index.js';
import type { ModelInfo } from '../protocol/index.js';
import type { Logger } from '../output/logger.js';
import { createProgress, type Progress } from '../output/progress.js';
import type { CliTimings } from './cli-timings.js';

export type LoadedEngine = EngineProcess & { info?: ModelInfo };

/**
 * How the engine loads the model: `device`, and `lora`, a PEFT LoRA adapter directory merged into the
 * weights at load (`--lora`; every command that starts an engine passes its options through here), and
 * `precision`, the CPU arithmetic of the compute-bound products (`--precision`).
 */
export interface EngineStartOptions { device: string; verbose: boolean; lora?: string; precision?: 'f32' | 'bf16'; weights?: string }

/** `progress` shows "loading the model"; the caller stops it (the next phase may follow at once). */
export async function startEngine(modelDir: string, opts: EngineStartOptions, log: Logger, progress?: Progress): Promise<LoadedEngine> {
  const own = progress ?? createProgress({ verbose: opts.verbose });
  own.phase('loading the model');
  const engine: LoadedEngine = await EngineProcess.start({ onLog: (l) => log.verbose(`engine: ${l}`) });
  try {
    engine.info = await engine.loadModel(modelDir, opts.device, opts.lora === undefined ? undefined : resolve(opts.lora), opts.precision, opts.weights);
    if (engine.info.adapter) log.verbose(`LoRA adapter ${engine.info.adapter.dir}: ${engine.info.adapter.modules} modules, rank ${engine.info.adapter.rank}, scale ${engine.info.adapter.scale}`);
    log.verbose(`engine ${engine.hello?.engine}: ${engine.info.backend} on ${engine.info.device}${engine.info.kernels ? `, ${engine.info.kernels.precision} GEMMs on ${engine.info.kernels.gemm}` : ''}, ${engine.info.weights ?? 'bf16'} weights${engine.info.weights_kernel ? ` (${engine.info.weights_kernel})` : ''}`);
    return engine;
  } catch (e) {
    await engine.close();
    throw e;
  } finally {
    if (!progress) own.stop();
  }
}

/**
 * The engine with the model, and the tokenizer read meanwhile (about a second, in parallel with the
 * engine's load). The engine's verdict on a broken model comes first; the progress line is stopped
 * if loading fails.
 */
export async function startModel(modelDir: string, opts: EngineStartOptions, log: Logger, progress: Progress, timings: CliTimings): Promise<{ engine: LoadedEngine; tokenizer: Promise<PromptBuilder> }> {
  const tokenizer = timings.time('tokenizer', PromptBuilder.load(modelDir));
  tokenizer.catch(() => {}); // awaited later; a broken model is reported by the engine first
  try {
    return { engine: await timings.time('modelLoad', startEngine(modelDir, opts, log, progress)), tokenizer };
  } catch (e) {
    progress.stop();
    throw e;
  }
}

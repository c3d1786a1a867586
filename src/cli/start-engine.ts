// Starts the engine and loads the model, with a spinner on a terminal while it loads.
import ora from 'ora';
import { EngineProcess } from '../engine/engine-process.js';
import type { ModelInfo } from '../protocol/index.js';
import type { Logger } from '../output/logger.js';

export async function startEngine(modelDir: string, opts: { device: string; verbose: boolean }, log: Logger): Promise<EngineProcess & { info?: ModelInfo }> {
  const spinner = process.stderr.isTTY && !opts.verbose ? ora({ text: 'loading the model', stream: process.stderr }).start() : undefined;
  const engine: EngineProcess & { info?: ModelInfo } = await EngineProcess.start({ onLog: (l) => log.verbose(`engine: ${l}`) });
  try {
    engine.info = await engine.loadModel(modelDir, opts.device);
    log.verbose(`engine ${engine.hello?.engine}: ${engine.info.backend} on ${engine.info.device}`);
    return engine;
  } catch (e) {
    await engine.close();
    throw e;
  } finally {
    spinner?.stop();
  }
}

// The one place that chooses what answers: the local engine with the model, or the server given
// by --endpoint. Everything after this works on the Backend interface (src/session/backend.ts).
import { readGenerationDefaults } from '../model/generation-config.js';
import type { Logger } from '../output/logger.js';
import type { Progress } from '../output/progress.js';
import { checkEndpointFlags } from '../remote/endpoint.js';
import { resolveWeights } from './options.js';
import type { Backend } from '../session/backend.js';
import { LocalBackend, type LocalOptions } from '../session/local-backend.js';
import type { GenerationOptions } from './ask-options.js';
import type { CliTimings } from './cli-timings.js';
import { displayName, modelFor } from './model-arg.js';

export interface OpenedBackend {
  backend: Backend;
  /** What to call the model on screen. */
  modelName: string;
}

/**
 * `progress` shows "loading the model" (local) or "connecting" (remote); the caller stops it.
 * `local.restartProgress` is what shows later waits: an engine restart, or a server's first token.
 */
export async function openBackend(
  opts: GenerationOptions, log: Logger, progress: Progress, timings: CliTimings, local: Omit<LocalOptions, 'device' | 'verbose' | 'lora' | 'precision' | 'weights'>,
): Promise<OpenedBackend> {
  checkEndpointFlags(opts);
  if (opts.endpoint !== undefined) {
    progress.phase(`connecting to ${opts.endpoint}`);
    try {
      // The OpenAI client loads only for --endpoint: local runs start without it.
      const { RemoteBackend } = await import('../remote/remote-backend.js');
      const backend = await timings.time('modelLoad', RemoteBackend.connect(opts, { minPixels: opts.minPixels, maxPixels: opts.maxPixels }, log, local.restartProgress));
      return { backend, modelName: backend.model.id };
    } catch (e) {
      progress.stop();
      throw e;
    }
  }
  const model = await modelFor(opts.model, log);
  const defaults = readGenerationDefaults(model.dir);
  const backend = await LocalBackend.start(model.dir, defaults, { ...local, device: opts.device, verbose: opts.verbose, lora: opts.lora, precision: opts.precision, weights: resolveWeights(opts.weights) }, log, progress, timings);
  return { backend, modelName: displayName(model) };
}

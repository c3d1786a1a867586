// `ovis serve`: the OpenAI-compatible HTTP server (src/server/) on one supervised engine. Prints one
// line on stderr when it listens (tests and scripts parse it); SIGTERM or Ctrl-C drains the
// requests in flight, then stops the engine and exits.
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { UsageError } from '../errors.js';
import { DEFAULT_MAX_INPUT_PIXELS } from '../media/decode-image.js';
import { readGenerationDefaults } from '../model/generation-config.js';
import { createLogger } from '../output/logger.js';
import { displayName, modelFor } from './model-arg.js';
import { deviceOption, intOption, LORA_HELP, PRECISION_HELP, PRECISIONS, type Precision, resolveWeights, WEIGHTS_HELP, weightsOption } from './options.js';

/** How long a remote medium (--allow-remote-media) may take to download, milliseconds. */
const REMOTE_TIMEOUT_MS = 30_000;

interface ServeOptions {
  host: string;
  port: number;
  model?: string;
  device: string;
  lora?: string;
  precision?: Precision;
  weights?: string;
  maxBatch: number;
  kvMemory?: string;
  maxQueue: number;
  apiKey?: string;
  allowLocalFiles: boolean;
  allowRemoteMedia: boolean;
  maxMediaBytes: number;
  maxBodyBytes: number;
  maxInputPixels: number;
  frames: number;
  verbose: boolean;
}

/** The engine's --kv-memory sizes: bytes, or a number with K, M, G or T (at least 1 MiB, as the engine checks). */
function kvMemoryOption(value: string): string {
  const m = /^(\d+)([KMGT]?)(i?B)?$/i.exec(value.trim());
  const bytes = m ? Number(m[1]) * 1024 ** ' KMGT'.indexOf((m[2] || ' ').toUpperCase()) : 0;
  if (!m || bytes < 2 ** 20) throw new InvalidArgumentError(`--kv-memory takes a size of at least 1M, such as 4G or 512M, got ${JSON.stringify(value)}`);
  return value.trim();
}

export function serveCommand(): Command {
  return new Command('serve')
    .description('serve the model over an OpenAI-compatible HTTP API (POST /v1/chat/completions), with a chat page at /')
    .option('--host <host>', 'address to listen on (a non-loopback address without --api-key prints a warning)', '127.0.0.1')
    .option('-p, --port <port>', 'port to listen on; 0 picks a free one', intOption('--port', 0, 65535), 8000)
    .option('-m, --model <model>', 'a model directory, or ORG/NAME[@REVISION] from the Hugging Face or ModelScope cache (default: $OVIS_MODEL, else AIDC-AI/Ovis2.5-2B)')
    .addOption(new Option('--device <device>', 'where the engine runs: auto, cpu, cuda, cuda:N').argParser(deviceOption).default('auto'))
    .option('--lora <dir>', LORA_HELP)
    .addOption(new Option('--precision <p>', PRECISION_HELP).choices(PRECISIONS))
    .option('--weights <mode>', WEIGHTS_HELP, weightsOption)
    .option('--max-batch <n>', 'completions generated together at most (the engine\'s batch)', intOption('--max-batch', 1, 256), 8)
    .option('--kv-memory <size>', 'what the KV caches may hold, e.g. 4G (default: half the memory available; on a GPU, 90% of its memory left free by the model, and evicted GPU caches kept in host memory up to the same size)', kvMemoryOption)
    .option('--max-queue <n>', 'completions waiting beyond --max-batch; more get HTTP 429', intOption('--max-queue', 0, 100_000), 64)
    .option('--api-key <key>', 'require "Authorization: Bearer KEY" on /v1 (default: $OVIS_API_KEY)')
    .option('--allow-local-files', 'accept file:// image and video URLs (files on the server)', false)
    .option('--allow-remote-media', 'accept http(s) image and video URLs (downloaded by the server, 30 s at most)', false)
    .option('--max-media-bytes <n>', 'largest image or video accepted, bytes (HTTP 413 beyond)', intOption('--max-media-bytes', 1), 32 * 2 ** 20)
    .option('--max-body-bytes <n>', 'largest request body, bytes (HTTP 413 beyond)', intOption('--max-body-bytes', 1), 64 * 2 ** 20)
    .option('--max-input-pixels <n>', 'refuse images whose decoded size exceeds this many pixels (HTTP 413)', intOption('--max-input-pixels', 1), DEFAULT_MAX_INPUT_PIXELS)
    .option('--frames <n>', 'frames sampled from a video', intOption('--frames', 1, 256), 8)
    .option('-v, --verbose', 'show engine logs on stderr', false)
    .action((opts: ServeOptions) => runServe(opts));
}

export async function runServe(opts: ServeOptions): Promise<void> {
  // The server's modules (fastify and the rest) load only here: every other command starts without them.
  const [{ PromptBuilder }, { Admission }, { buildApp }, { isLoopback }, { Metrics }, { SessionPool }, { EngineSupervisor }] = await Promise.all([
    import('../prompt/index.js'), import('../server/admission.js'), import('../server/app.js'), import('../server/auth.js'),
    import('../server/metrics.js'), import('../server/session-pool.js'), import('../server/supervisor.js'),
  ]);
  const log = createLogger({ verbose: opts.verbose });
  const apiKey = opts.apiKey ?? (process.env.OVIS_API_KEY || undefined);
  const model = await modelFor(opts.model, log);
  const defaults = readGenerationDefaults(model.dir);
  const metrics = new Metrics();
  const serveArgs = ['--max-batch', String(opts.maxBatch), ...(opts.kvMemory ? ['--kv-memory', opts.kvMemory] : [])];
  const supervisor = new EngineSupervisor({ modelDir: model.dir, device: opts.device, lora: opts.lora === undefined ? undefined : resolve(opts.lora), precision: opts.precision, weights: resolveWeights(opts.weights), serveArgs, log, onRestart: () => (metrics.engineRestarts += 1) });
  const [prompts] = await Promise.all([PromptBuilder.load(model.dir), supervisor.start()]);
  const admission = new Admission(opts.maxBatch, opts.maxQueue);
  const ctx = {
    modelName: displayName(model), supervisor, prompts, defaults, metrics, admission, log,
    // Idle sessions kept for prefix reuse: a few per batch slot; more are closed, least recent first.
    pool: new SessionPool(opts.maxBatch * 4),
    policy: { allowLocalFiles: opts.allowLocalFiles, allowRemoteMedia: opts.allowRemoteMedia, maxMediaBytes: opts.maxMediaBytes, maxInputPixels: opts.maxInputPixels, frames: opts.frames, remoteTimeoutMs: REMOTE_TIMEOUT_MS },
  };
  let draining = false;
  const app = buildApp(ctx, { apiKey, maxBodyBytes: opts.maxBodyBytes, draining: () => draining });
  try {
    await app.listen({ host: opts.host, port: opts.port });
  } catch (e) {
    await supervisor.close();
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'EADDRINUSE') throw new UsageError(`cannot listen on ${opts.host}:${opts.port}: the port is in use; choose another --port (0 picks a free one)`, { cause: e });
    if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') throw new UsageError(`cannot listen on ${opts.host}:${opts.port} (${code}): give an address of this machine as --host, and a port you may use`, { cause: e });
    throw e;
  }
  const addr = app.server.address() as AddressInfo;
  const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  if (!apiKey && !isLoopback(opts.host)) log.warn(`listening on ${opts.host} without an API key: anyone who can reach this address can use the model; set --api-key or OVIS_API_KEY`);
  process.stderr.write(`ovis serve: listening on http://${host}:${addr.port} (model ${ctx.modelName})\n`);
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      if (draining) {
        // A second signal: stop now.
        log.warn(`${signal} again: stopping without waiting`);
        supervisor.close().finally(() => process.exit(143));
        return;
      }
      draining = true;
      log.info(`ovis serve: ${signal}: finishing ${admission.running + admission.queued} request(s) in flight, then stopping`);
      // close() stops accepting connections and waits for the requests in flight to end.
      app.close().then(() => supervisor.close()).then(resolve, resolve);
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

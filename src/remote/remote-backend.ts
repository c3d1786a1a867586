// An OpenAI-compatible server (`ovis serve`, vLLM) as a Backend: each answer is one streamed
// chat-completions request carrying the whole conversation (the server keeps no session; vLLM's
// prefix cache reuses what it can). Ctrl-C aborts the HTTP request; the answer so far is kept.
import type OpenAI from 'openai';
import { NetworkError } from '../errors.js';
import type { Logger } from '../output/logger.js';
import { silentProgress, type Progress } from '../output/progress.js';
import type { AnswerRequest, Backend, BackendInfo } from '../session/backend.js';
import type { TurnHooks, TurnResult } from '../session/turn.js';
import { openaiClient } from './client.js';
import { remoteSettings, type EndpointFlags, type RemoteSettings } from './endpoint.js';
import { remoteError } from './errors.js';
import { pickRemoteModel, type RemoteModel } from './model-name.js';
import { chatRequest, type RemoteMediaOptions } from './request.js';
import { readStream, type StreamChunk } from './stream-reader.js';

export class RemoteBackend implements Backend {
  readonly defaults = undefined;
  lastPromptTokens = 0;
  private readonly used = new Map<string, number>();
  private readonly inFlight = new Set<AbortController>();

  private constructor(
    private readonly client: OpenAI,
    readonly settings: RemoteSettings,
    readonly model: RemoteModel,
    private readonly media: RemoteMediaOptions,
    private readonly log: Logger,
    private readonly progress: Progress,
  ) {}

  /** Checks the endpoint (GET /models) and settles the model's name. */
  /** `progress` shows the wait for the first token (the caller stops it; silent in the chat, whose view shows phases). */
  static async connect(flags: EndpointFlags & { model?: string }, media: RemoteMediaOptions, log: Logger, progress: Progress = silentProgress): Promise<RemoteBackend> {
    const settings = remoteSettings(flags);
    const client = openaiClient(settings);
    const model = await pickRemoteModel(client, settings, flags);
    log.verbose(`endpoint ${settings.endpoint}: model ${model.id}${model.maxModelLen ? `, context ${model.maxModelLen}` : ''}`);
    return new RemoteBackend(client, settings, model, media, log, progress);
  }

  get info(): BackendInfo {
    return { backend: 'remote', device: this.settings.endpoint, maxPositions: this.model.maxModelLen };
  }

  contextUsed(session: string): number {
    return this.used.get(session) ?? 0;
  }

  async answer(req: AnswerRequest, hooks: TurnHooks): Promise<TurnResult> {
    const body = chatRequest(req, this.model.id, this.media);
    const controller = new AbortController();
    const onAbort = () => controller.abort();
    hooks.signal?.addEventListener('abort', onAbort, { once: true });
    if (hooks.signal?.aborted) controller.abort();
    this.inFlight.add(controller);
    const startedAt = performance.now();
    this.progress.phase(`waiting for ${this.settings.endpoint}`);
    try {
      let stream: AsyncIterable<StreamChunk>;
      try {
        stream = (await this.client.chat.completions.create(body as never, { signal: controller.signal })) as unknown as AsyncIterable<StreamChunk>;
      } catch (e) {
        // Stopped before the server answered: a turn with no tokens, as a cancelled local prefill.
        if (controller.signal.aborted) return readStream(emptyStream(), hooks, { startedAt, aborted: () => true });
        throw e;
      }
      // The timeout covers the wait for the headers (the SDK) and, here, every gap between chunks.
      let stalled = false;
      const watched = watchdog(stream, this.settings.timeoutMs, () => {
        stalled = true;
        controller.abort();
      });
      let result: TurnResult;
      try {
        result = await readStream(watched, hooks, { startedAt, aborted: () => controller.signal.aborted && !stalled, topLogprobs: req.topLogprobs });
      } catch (e) {
        if (!stalled) throw e;
        const at = this.settings.endpoint;
        throw new NetworkError(`${at} sent nothing for ${this.settings.timeoutMs / 1000} s in the middle of the answer: check that the server is up and not overloaded, or wait longer with OVIS_ENDPOINT_TIMEOUT=SECONDS`, { cause: e });
      }
      const d = result.done;
      this.lastPromptTokens = d.prompt_tokens + d.cached_tokens;
      this.used.set(req.session, d.prompt_tokens + d.cached_tokens + d.completion_tokens);
      this.log.verbose(`${this.settings.endpoint}: ${this.lastPromptTokens} prompt tokens (${d.cached_tokens} cached), ${d.completion_tokens} generated`);
      return result;
    } catch (e) {
      throw remoteError(e, this.settings, this.model.id);
    } finally {
      this.inFlight.delete(controller);
      hooks.signal?.removeEventListener('abort', onAbort);
    }
  }

  kill(): void {
    for (const c of this.inFlight) c.abort();
  }

  async close(): Promise<void> {
    this.kill();
  }
}

async function* emptyStream(): AsyncIterable<StreamChunk> {}

/** `stream`, calling `onStall` when `ms` pass without a chunk. */
async function* watchdog<T>(stream: AsyncIterable<T>, ms: number, onStall: () => void): AsyncIterable<T> {
  let timer = setTimeout(onStall, ms);
  try {
    for await (const chunk of stream) {
      clearTimeout(timer);
      yield chunk;
      timer = setTimeout(onStall, ms);
    }
  } finally {
    clearTimeout(timer);
  }
}

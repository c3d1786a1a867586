// POST /v1/chat/completions: parameters checked, the completion run, the answer sent as one JSON
// object or as server-sent events. A client that disconnects cancels its generation at once.
import type { FastifyReply, FastifyRequest } from 'fastify';
import { runCompletion, type ServerContext } from './completion.js';
import { httpErrorOf, HttpError } from './http-error.js';
import { parseCompletionParams, type CompletionParams } from './request-params.js';
import { completionBody, deltaChunk, finishChunk, newIdentity, roleChunk, usageChunk } from './responses.js';
import { SseWriter } from './sse.js';

export const CHAT_ROUTE = '/v1/chat/completions';

/** The status counted for a completion whose client went away (nginx's "client closed request"). */
export const CLIENT_CLOSED = 499; // = clientClosed().status

function checkModel(ctx: ServerContext, params: CompletionParams): void {
  if (params.model !== undefined && params.model !== ctx.modelName) {
    throw new HttpError(404, `the model ${JSON.stringify(params.model)} does not exist on this server; it serves ${JSON.stringify(ctx.modelName)} (GET /v1/models)`, 'invalid_request_error', 'model', 'model_not_found');
  }
}

/** Aborts when the client closes the connection before the response is complete. */
function disconnectSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.on('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

export function chatHandler(ctx: ServerContext) {
  return async (request: FastifyRequest, reply: FastifyReply) => {
    const arrivedAt = performance.now();
    const params = parseCompletionParams(request.body);
    checkModel(ctx, params);
    if (!params.stream) return answerWhole(ctx, params, reply, arrivedAt);
    reply.hijack();
    await answerStream(ctx, params, reply, arrivedAt);
  };
}

async function answerWhole(ctx: ServerContext, params: CompletionParams, reply: FastifyReply, arrivedAt: number) {
  const signal = disconnectSignal(reply);
  const result = await runCompletion(ctx, params, signal, () => {}, arrivedAt);
  if (result.cancelled) {
    ctx.metrics.countRequest(CHAT_ROUTE, CLIENT_CLOSED);
    return reply.hijack();
  }
  return completionBody(newIdentity(ctx.modelName), result, params.logprobs);
}

async function answerStream(ctx: ServerContext, params: CompletionParams, reply: FastifyReply, arrivedAt: number): Promise<void> {
  const sse = new SseWriter(reply.raw);
  const who = newIdentity(ctx.modelName);
  const signal = disconnectSignal(reply);
  let status = 200;
  try {
    const result = await runCompletion(ctx, params, signal, (d) => {
      if (!sse.headersSent) sse.event(roleChunk(who, params.includeUsage));
      sse.event(deltaChunk(who, d, params.includeUsage));
    }, arrivedAt);
    if (result.cancelled) {
      status = CLIENT_CLOSED;
      return;
    }
    if (!sse.headersSent) sse.event(roleChunk(who, params.includeUsage));
    sse.event(finishChunk(who, result.finishReason, params.includeUsage));
    if (params.includeUsage) sse.event(usageChunk(who, result.usage));
    sse.done();
  } catch (e) {
    const err = httpErrorOf(e);
    status = signal.aborted ? CLIENT_CLOSED : err.status;
    if (err.status >= 500) ctx.log.warn(`${CHAT_ROUTE}: ${err.message}`);
    if (sse.headersSent) {
      // Mid-stream the status is sent already: the error goes as an event, as vLLM does.
      sse.event(err.body());
      sse.done();
    } else {
      sse.json(err.status, err.body());
    }
  } finally {
    ctx.metrics.countRequest(CHAT_ROUTE, status);
    if (!reply.raw.writableEnded) reply.raw.end();
  }
}

// The HTTP server (fastify: a schema-free JSON API with hooks for auth and errors, mature and fast;
// see docs in README "Serve"): the OpenAI-compatible routes, /health, /metrics and the chat page.
// Every error leaves as an OpenAI-shaped body with its status code.
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { bearerChecker } from './auth.js';
import { chatPageHtml } from './chat-page.js';
import { CHAT_ROUTE, chatHandler } from './chat-route.js';
import type { ServerContext } from './completion.js';
import { badRequest, HttpError, httpErrorOf } from './http-error.js';

export interface AppOptions {
  apiKey?: string;
  /** Largest request body, bytes (413 beyond). */
  maxBodyBytes: number;
  /** Set while SIGTERM drains: /health answers 503. */
  draining: () => boolean;
}

/** Fastify's own errors (body parsing, size) in OpenAI's shape. */
function fromFastify(e: FastifyError): HttpError {
  if (e instanceof HttpError) return e;
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return new HttpError(413, `the request body is over this server's limit of ${e.message.match(/\d+/)?.[0] ?? 'its'} bytes (--max-body-bytes)`, 'invalid_request_error', null, 'payload_too_large');
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return new HttpError(415, 'send the request body as JSON (Content-Type: application/json)', 'invalid_request_error', null, 'unsupported_media_type');
  if (e.statusCode === 400) return badRequest(`the request body is not valid JSON: ${e.message}`, null, 'invalid_json');
  return httpErrorOf(e);
}

export function buildApp(ctx: ServerContext, opts: AppOptions): FastifyInstance {
  const app = Fastify({ bodyLimit: opts.maxBodyBytes, logger: false });
  const checkKey = opts.apiKey ? bearerChecker(opts.apiKey) : undefined;

  app.addHook('onRequest', async (request) => {
    if (checkKey && request.url.startsWith('/v1/')) checkKey(request.headers.authorization);
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unknown';
    if (route.startsWith('/v1/')) ctx.metrics.countRequest(route, reply.statusCode);
  });
  app.setErrorHandler(async (e: FastifyError, request, reply) => {
    const err = fromFastify(e);
    if (err.status >= 500) ctx.log.warn(`${request.method} ${request.url}: ${err.message}`);
    if (err.status === 503 || err.status === 429) reply.header('retry-after', '1');
    return reply.code(err.status).send(err.body());
  });
  app.setNotFoundHandler(async (request, reply) => {
    const err = new HttpError(404, `no route ${request.method} ${request.url.split('?')[0]}: this server offers POST ${CHAT_ROUTE}, GET /v1/models, /health, /metrics and /`, 'invalid_request_error', null, 'not_found');
    return reply.code(404).send(err.body());
  });

  app.post(CHAT_ROUTE, chatHandler(ctx));
  const created = Math.floor(Date.now() / 1000);
  const model = () => ({ id: ctx.modelName, object: 'model', created, owned_by: 'ovis', max_model_len: ctx.supervisor.info?.llm.max_positions });
  app.get('/v1/models', async () => ({ object: 'list', data: [model()] }));
  app.get('/v1/models/*', async (request) => {
    const id = decodeURIComponent((request.params as { '*': string })['*']);
    if (id !== ctx.modelName) throw new HttpError(404, `the model ${JSON.stringify(id)} does not exist on this server; it serves ${JSON.stringify(ctx.modelName)}`, 'invalid_request_error', 'model', 'model_not_found');
    return model();
  });
  app.get('/health', async (_request, reply) => {
    const state = opts.draining() ? 'draining' : ctx.supervisor.ready ? 'ok' : 'restarting';
    const body = {
      status: state,
      model: ctx.modelName,
      engine_pid: ctx.supervisor.pid ?? null,
      running: ctx.admission.running,
      queued: ctx.admission.queued,
      ...(state === 'restarting' && ctx.supervisor.lastError ? { error: ctx.supervisor.lastError.split('\n')[0] } : {}),
    };
    return reply.code(state === 'ok' ? 200 : 503).send(body);
  });
  app.get('/metrics', async (_request, reply) =>
    reply.type('text/plain; version=0.0.4; charset=utf-8').send(ctx.metrics.render({ running: ctx.admission.running, queued: ctx.admission.queued, engineUp: ctx.supervisor.ready })));
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(chatPageHtml()));
  return app;
}

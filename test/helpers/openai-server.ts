// A real HTTP server on loopback that speaks the OpenAI chat-completions API as vLLM serves Ovis2.5
// (GET /v1/models with max_model_len; POST /v1/chat/completions streamed as server-sent events:
// a role chunk, `reasoning_content` / `content` deltas with optional logprobs, a finish chunk, a
// usage chunk when stream_options.include_usage, then [DONE]; OpenAI-shaped error bodies). It
// records every request (method, path, headers, parsed body) so tests can check what `ovis ask
// --endpoint` sent. What it answers is scripted per test: `reply` maps a request to a Reply.
import { createServer, type IncomingHttpHeaders, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Recorded {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: any;
  /** The client went away before the response ended (Ctrl-C, a timeout). */
  aborted: boolean;
}

export interface Delta {
  content?: string;
  reasoning_content?: string;
}

export type Reply =
  /** A streamed answer: one chunk per delta, `gapMs` apart. */
  | { deltas: Delta[]; finish?: 'stop' | 'length'; usage?: { prompt_tokens: number; completion_tokens: number; cached_tokens?: number }; gapMs?: number }
  /** An error with an OpenAI-shaped body. */
  | { status: number; message: string; type?: string }
  /** Never answers (the headers never come). */
  | { hang: true }
  /** Sends these deltas, then keeps the stream open without an end. */
  | { stall: Delta[] }
  /** Sends these deltas, then drops the connection (no finish_reason, no [DONE]). */
  | { cut: Delta[] }
  /** Sends these deltas, then an error event inside the stream, as vLLM does when generation fails. */
  | { failAfter: Delta[]; message: string };

export interface ServerOptions {
  models?: Array<{ id: string; max_model_len?: number }>;
  /** When set, every request needs `Authorization: Bearer <apiKey>` (401 otherwise, as vLLM --api-key). */
  apiKey?: string;
  reply?: (body: any, req: Recorded) => Reply;
}

/** One token's log-probability as vLLM streams it (with `top_logprobs` alternatives when asked). */
function logprobsFor(text: string, top: number) {
  const lp = -0.25;
  const alts = Array.from({ length: top }, (_, i) => ({ token: i === 0 ? text : `alt${i}`, logprob: lp - i, bytes: [] }));
  return { content: [{ token: text, logprob: lp, bytes: [...Buffer.from(text)], top_logprobs: alts }] };
}

export class OpenAITestServer {
  readonly requests: Recorded[] = [];
  private readonly open = new Set<ServerResponse>();
  private constructor(
    private readonly server: Server,
    readonly opts: ServerOptions,
  ) {}

  static async start(opts: ServerOptions = {}): Promise<OpenAITestServer> {
    const server = createServer();
    const s = new OpenAITestServer(server, opts);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        let body: any;
        try {
          body = raw ? JSON.parse(raw) : undefined;
        } catch {
          body = raw;
        }
        const rec: Recorded = { method: req.method ?? '', path: req.url ?? '', headers: req.headers, body, aborted: false };
        s.requests.push(rec);
        res.on('close', () => {
          if (!res.writableEnded) rec.aborted = true;
          s.open.delete(res);
        });
        s.open.add(res);
        s.handle(rec, res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return s;
  }

  /** The API base, as given to --endpoint. */
  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/v1`;
  }

  /** The chat-completions requests received (not the model listings). */
  get completions(): Recorded[] {
    return this.requests.filter((r) => r.path === '/v1/chat/completions');
  }

  async close(): Promise<void> {
    for (const res of this.open) res.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private error(res: ServerResponse, status: number, message: string, type = 'BadRequestError'): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ object: 'error', message, type, param: null, code: status }));
  }

  private handle(rec: Recorded, res: ServerResponse): void {
    const key = this.opts.apiKey;
    if (key !== undefined && rec.headers.authorization !== `Bearer ${key}`) {
      // vLLM's --api-key check answers this body.
      res.writeHead(401, { 'content-type': 'application/json' });
      return void res.end(JSON.stringify({ error: 'Unauthorized' }));
    }
    const models = this.opts.models ?? [{ id: 'AIDC-AI/Ovis2.5-9B', max_model_len: 40960 }];
    if (rec.method === 'GET' && rec.path === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: models.map((m) => ({ id: m.id, object: 'model', created: 0, owned_by: 'vllm', root: m.id, parent: null, ...(m.max_model_len ? { max_model_len: m.max_model_len } : {}) })) }));
      return;
    }
    if (rec.method !== 'POST' || rec.path !== '/v1/chat/completions') return this.error(res, 404, `Not Found: ${rec.path}`, 'NotFoundError');
    const body = rec.body;
    if (typeof body !== 'object' || body === null) return this.error(res, 400, 'the body is not JSON');
    if (!models.some((m) => m.id === body.model)) return this.error(res, 404, `The model \`${body.model}\` does not exist.`, 'NotFoundError');
    const reply = this.opts.reply?.(body, rec) ?? { deltas: [{ content: 'Hello' }, { content: ' there.' }] };
    if ('hang' in reply) return;
    if ('status' in reply) return this.error(res, reply.status, reply.message, reply.type);
    if (body.stream !== true) return this.error(res, 400, 'this test server only streams');
    void this.stream(body, res, reply);
  }

  private async stream(body: any, res: ServerResponse, reply: Exclude<Reply, { hang: true } | { status: number }>): Promise<void> {
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache' });
    const base = { id: 'chatcmpl-test', object: 'chat.completion.chunk', created: 0, model: body.model };
    const send = (o: object) => res.write(`data: ${JSON.stringify({ ...base, ...o })}\n\n`);
    const top = body.logprobs ? (body.top_logprobs ?? 0) : -1;
    send({ choices: [{ index: 0, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }] });
    const deltas = 'stall' in reply ? reply.stall : 'cut' in reply ? reply.cut : 'failAfter' in reply ? reply.failAfter : reply.deltas;
    for (const d of deltas) {
      const text = d.content ?? d.reasoning_content ?? '';
      send({ choices: [{ index: 0, delta: d, logprobs: top >= 0 ? logprobsFor(text, top) : null, finish_reason: null }] });
      if ('deltas' in reply && reply.gapMs) await new Promise((r) => setTimeout(r, reply.gapMs));
      if (res.destroyed) return;
    }
    if ('stall' in reply) return; // stays open until the client goes
    if ('cut' in reply) {
      // Let the chunks reach the client first: destroy() drops what is still buffered.
      await new Promise((r) => setTimeout(r, 200));
      return void res.destroy();
    }
    if ('failAfter' in reply) {
      res.write(`data: ${JSON.stringify({ error: { object: 'error', message: reply.message, type: 'InternalServerError', param: null, code: 500 } })}\n\n`);
      return void res.end('data: [DONE]\n\n');
    }
    send({ choices: [{ index: 0, delta: {}, logprobs: null, finish_reason: reply.finish ?? 'stop', stop_reason: null }] });
    if (body.stream_options?.include_usage) {
      const u = reply.usage ?? { prompt_tokens: 17, completion_tokens: deltas.length };
      send({ choices: [], usage: { prompt_tokens: u.prompt_tokens, completion_tokens: u.completion_tokens, total_tokens: u.prompt_tokens + u.completion_tokens, ...(u.cached_tokens !== undefined ? { prompt_tokens_details: { cached_tokens: u.cached_tokens } } : {}) } });
    }
    res.end('data: [DONE]\n\n');
  }
}

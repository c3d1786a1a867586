// A server-sent-events response on the raw Node response: `data: JSON` events, `data: [DONE]` at
// the end. The status line and headers go out with the first event, so a request that fails
// before producing anything still gets its proper status code and JSON error body.
import type { ServerResponse } from 'node:http';

export class SseWriter {
  private started = false;

  constructor(private readonly res: ServerResponse) {}

  get headersSent(): boolean {
    return this.started;
  }

  /** True when the client is gone (a write would go nowhere). */
  get closed(): boolean {
    return this.res.destroyed || this.res.writableEnded;
  }

  event(data: unknown): void {
    if (this.closed) return;
    if (!this.started) {
      this.started = true;
      this.res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-cache', connection: 'keep-alive', 'x-accel-buffering': 'no' });
    }
    this.res.write(`data: ${JSON.stringify(data)}\n\n`);
  }

  done(): void {
    if (this.closed) return;
    if (this.started) this.res.end('data: [DONE]\n\n');
    else this.res.end();
  }

  /** A JSON error as the whole response (before any event). */
  json(status: number, body: unknown): void {
    if (this.closed) return;
    // As the JSON routes do (app.ts): a busy or restarting server says when to try again.
    const retry = status === 429 || status === 503 ? { 'retry-after': '1' } : {};
    this.res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...retry });
    this.res.end(JSON.stringify(body));
  }
}

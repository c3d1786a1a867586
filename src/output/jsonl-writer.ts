// `--json`: one JSON object per line on stdout (token events, then done, or an error).
import type { DoneEvent } from '../protocol/index.js';
import type { TokenOut } from '../session/turn.js';

export class JsonlWriter {
  constructor(private stdout: NodeJS.WritableStream = process.stdout) {}

  private line(obj: object): void {
    this.stdout.write(`${JSON.stringify(obj)}\n`);
  }

  /** A token from a remote server has no id (-1 here): written as null, as is a logprob it did not send. */
  token(t: TokenOut): void {
    const id = (n: number) => (n >= 0 ? n : null);
    const logprob = t.forced || Number.isNaN(t.logprob) ? null : t.logprob;
    const ev: Record<string, unknown> = { type: 'token', id: id(t.id), text: t.text, channel: t.channel, logprob };
    if (t.top) ev.top_logprobs = t.top.map((x) => ({ ...x, id: id(x.id) }));
    if (t.forced) ev.forced = true;
    this.line(ev);
  }

  /** `cli`: the command line's own timings (start, model load, tokenizer, media, wall), beside the engine's. */
  done(d: DoneEvent, cli: object = {}): void {
    this.line({
      type: 'done',
      finish_reason: d.finish_reason,
      usage: { prompt_tokens: d.prompt_tokens + d.cached_tokens, completion_tokens: d.completion_tokens },
      timings: { ...d.timings, ...cli },
    });
  }

  error(code: string, message: string): void {
    this.line({ type: 'error', code, message });
  }
}

// Plain-text answers: the answer on stdout, thinking on stderr (dim on a terminal). Like the
// reference's `chat()`, each channel is stripped of surrounding whitespace and the think tags.
import type { TokenOut } from '../session/turn.js';
import { THINK_END, THINK_START } from '../session/turn.js';

/** Prints one channel's text: leading whitespace dropped, trailing whitespace held until more text comes. */
export class ChannelPrinter {
  private started = false;
  private heldSpace = '';
  constructor(private write: (s: string) => void) {}

  /** Prints text, dropping leading whitespace and holding trailing whitespace until more text comes. */
  print(text: string): void {
    let t = text;
    if (!this.started) {
      t = t.replace(/^\s+/, '');
      if (!t) return;
      this.started = true;
    }
    const m = /\s+$/.exec(t);
    const body = m ? t.slice(0, m.index) : t;
    if (body) {
      this.write(this.heldSpace + body);
      this.heldSpace = '';
    }
    this.heldSpace += m ? m[0] : '';
  }

  get printed(): boolean {
    return this.started;
  }
}

export class TextWriter {
  private answer: ChannelPrinter;
  private thinking: ChannelPrinter;

  constructor(
    private stdout: NodeJS.WritableStream = process.stdout,
    private stderr: NodeJS.WritableStream = process.stderr,
    opts: { showThinking?: boolean } = {},
  ) {
    const dim = (stderr as NodeJS.WriteStream).isTTY === true && !process.env.NO_COLOR;
    this.answer = new ChannelPrinter((s) => this.stdout.write(s));
    this.thinking = new ChannelPrinter(
      opts.showThinking === false ? () => {} : (s) => this.stderr.write(dim ? `\x1b[2m${s}\x1b[22m` : s),
    );
  }

  token(t: TokenOut): void {
    if (t.id === THINK_START || t.id === THINK_END) return;
    (t.channel === 'thinking' ? this.thinking : this.answer).print(t.text);
  }

  /** Ends both channels with one newline each (held trailing whitespace is dropped, as `strip()` does). */
  end(): void {
    if (this.thinking.printed) this.stderr.write('\n');
    if (this.answer.printed) this.stdout.write('\n');
  }
}

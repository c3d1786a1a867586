// `ovis chat` as plain lines, for terminals that cannot redraw: TERM=dumb (Emacs shells, some CI
// consoles) or a terminal that reports no size. The same controller as the Ink view; input through
// readline (a line ending in `\` continues on the next), output appended, never redrawn.
import { createInterface } from 'node:readline';
import type { ChatSession } from '../session/chat-session.js';
import { statusLine, type ChatView, type Entry, type Status } from '../ui/transcript.js';
import { ChatController } from './chat-controller.js';
import { appendHistory, readHistory } from './chat-history-file.js';

class PlainView implements ChatView {
  private streamed = false;
  private thinkingShown = false;
  private lastPhase = '';
  private turnDone = false;
  restore?: (text: string) => void;

  constructor(private readonly out: NodeJS.WritableStream, private readonly width: () => number) {}

  private write(s: string): void {
    this.out.write(s);
  }

  /** The terminal already shows what the user typed: user entries are echoed only in a refresh. */
  entry(e: Entry, echoUser = false): void {
    const text = formatEntry(e, echoUser);
    if (text) this.write(`${text}\n`);
  }

  phase(text: string | undefined): void {
    // One line per phase, not per step: this terminal cannot redraw a line.
    const kind = text?.split(' · ')[0] ?? '';
    if (!text || kind === this.lastPhase) return;
    this.lastPhase = kind;
    this.write(`… ${kind}\n`);
  }

  thinking(delta: string): void {
    if (!this.thinkingShown) this.write('[thinking] ');
    this.thinkingShown = true;
    this.streamed = true;
    this.write(delta);
  }

  answer(delta: string): void {
    this.streamed = true;
    this.write(delta);
  }

  answerStarted(thinking: Entry | undefined): void {
    if (this.thinkingShown && thinking?.type === 'thinking') this.write(`\n[thought for ${thinking.tokens} tokens]\n`);
    this.thinkingShown = false;
  }

  turnEnded(): void {
    if (this.streamed) this.write('\n');
    this.streamed = false;
    this.thinkingShown = false;
    this.lastPhase = '';
    this.turnDone = true;
  }

  status(s: Status): void {
    // After a turn only: the line would be noise after every command.
    if (!this.turnDone) return;
    this.turnDone = false;
    this.write(`[${statusLine(s, Math.max(40, this.width() - 2))}]\n`);
  }

  refresh(entries: readonly Entry[]): void {
    this.write('----\n');
    for (const e of entries) this.entry(e, true);
  }

  restoreInput(text: string): void {
    this.restore?.(text);
  }
}

function formatEntry(e: Entry, echoUser: boolean): string {
  switch (e.type) {
    case 'banner':
      return `${e.title}\n${e.hint}`;
    case 'user':
      return echoUser ? `> ${e.text}` : '';
    case 'attachment':
      return `  + ${e.text}`;
    case 'thinking':
      return e.expanded ? `[thinking]\n${e.text}\n[end of thinking]` : `[thought for ${e.tokens > 0 ? `${e.tokens} tokens` : 'a while'}; /thinking shows it]`;
    case 'answer':
      return e.text;
    case 'notice':
      return e.tone === 'error' ? `error: ${e.text}` : e.text;
  }
}

export function runPlainChat(session: ChatSession, opts: { modelName: string; load?: string; save?: string }): Promise<void> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  // readline's own line editing needs a terminal that can move the cursor.
  const terminal = stdin.isTTY === true && process.env.TERM !== 'dumb' && (stdout.columns ?? 0) > 0;
  return new Promise<void>((resolve) => {
    const view = new PlainView(stdout, () => stdout.columns || 80);
    const rl = createInterface({ input: stdin, output: stdout, terminal, history: readHistory().reverse(), historySize: 500, prompt: '> ' });
    let left = false;
    const leave = async () => {
      if (left) return;
      left = true;
      process.off('SIGINT', onInterrupt);
      process.off('SIGTERM', leaveNow);
      rl.close();
      await controller.leave();
      resolve();
    };
    const leaveNow = () => void leave();
    const controller = new ChatController(session, view, { plain: true, modelName: opts.modelName, onExit: leaveNow });
    view.restore = (text) => {
      if (terminal) rl.write(text.replace(/\n/g, ' '));
      else stdout.write(`(not sent: ${text})\n`);
    };
    const onInterrupt = () => {
      if (controller.interrupt()) return;
      if (terminal && rl.line) {
        rl.write(null, { ctrl: true, name: 'u' });
        return;
      }
      leaveNow();
    };
    let lines: string[] = [];
    rl.on('line', (line) => {
      if (line.endsWith('\\')) {
        lines.push(line.slice(0, -1));
        rl.setPrompt('. ');
        rl.prompt();
        return;
      }
      const text = [...lines, line].join('\n');
      lines = [];
      rl.setPrompt('> ');
      if (!text.trim()) return rl.prompt();
      appendHistory(text);
      void controller.submit(text).finally(() => {
        if (!left) rl.prompt();
      });
    });
    rl.on('SIGINT', onInterrupt);
    rl.on('close', leaveNow);
    // Without readline's terminal handling the terminal itself turns Ctrl-C into SIGINT.
    process.on('SIGINT', onInterrupt);
    process.on('SIGTERM', leaveNow);
    controller.start();
    void controller.begin(opts.load, opts.save).finally(() => {
      if (!left) rl.prompt();
    });
  });
}

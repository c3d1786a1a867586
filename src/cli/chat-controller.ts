// The chat's behaviour, whatever draws it: what an input line does (a command or a message), the
// attachments, streaming a turn into the view, thinking folded once the answer starts, the status
// line, saving. The Ink view (chat-ink.tsx) and the line view (chat-plain.ts) feed it input and
// render what it tells them (src/ui/transcript.ts).
import { existsSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { InterruptedError, OvisError } from '../errors.js';
import { ChannelPrinter } from '../output/text-writer.js';
import { describeStep } from '../output/progress.js';
import { findMediaPaths, unquotePath } from '../session/media-paths.js';
import { mediaCountOf } from '../session/conversation.js';
import { THINK_END, THINK_START, type TokenOut } from '../session/turn.js';
import type { Attached, ChatSession, TurnReport } from '../session/chat-session.js';
import type { ChatView, Entry, Status } from '../ui/transcript.js';
import { displayText, formatInt } from '../ui/transcript.js';
import { describeMedia } from './ask.js';
import { helpLines, parseCommand } from './chat-commands.js';
import type { MediaArg } from './media-args.js';
import { describeAttachment, statsLines } from './chat-format.js';
import { EncodeNotice } from './encode-notice.js';
import type { EncodeClock } from '../session/encode-estimate.js';

export type ChatState = 'idle' | 'preparing' | 'generating';

export class ChatController {
  state: ChatState = 'idle';
  /** Entries as they would be drawn afresh (the view's scrollback may hold older ones). */
  private transcript: Entry[];
  private pending: Attached[] = [];
  private abort?: AbortController;
  private savingTo?: string;
  private running?: Promise<void>;
  /** The estimate before a CPU encode; the long-encode note once per chat. */
  private readonly encodes: EncodeNotice;

  constructor(
    private readonly session: ChatSession,
    private readonly view: ChatView,
    private readonly opts: { plain: boolean; modelName: string; onExit: () => void },
  ) {
    const info = session.info;
    this.encodes = new EncodeNotice(info.vision, { minPixels: session.settings.media.minPixels, note: (text) => this.notice(text, 'dim') });
    this.transcript = [{ type: 'banner', title: `ovis chat · ${opts.modelName} · ${info.backend}: ${info.device.replace(/ \(.*$/, '')}`, hint: opts.plain ? '/help for commands · a line ending in \\ continues · Ctrl+D leaves' : '/help for commands · Ctrl+J new line · Ctrl+C stops an answer · Ctrl+D leaves' }];
  }

  start(): void {
    this.view.entry(this.transcript[0]);
    this.view.status(this.status());
  }

  /** Handles one input (Enter). Resolves when the command or the whole turn is done. */
  submit(input: string): Promise<void> {
    if (this.state !== 'idle') {
      this.notice('an answer is being generated: wait for it, or press Ctrl+C to stop it', 'dim');
      this.view.restoreInput(input);
      return Promise.resolve();
    }
    const command = parseCommand(input);
    return this.run(() => (command ? this.command(command.name, command.arg) : this.message(input)), command ? undefined : input);
  }

  /** The start: continue a saved conversation (--load), keep it in a file (--save). */
  begin(load?: string, save?: string): Promise<void> {
    if (save) {
      this.savingTo = save;
      if (existsSync(save) && resolve(save) !== resolve(load ?? '')) this.notice(`${save} exists: it will be replaced by this conversation after the first answer`, 'warn');
      this.view.status(this.status());
    }
    return load ? this.run(() => this.load(load)) : Promise.resolve();
  }

  /** Draws the whole transcript again (Ctrl+L). */
  redraw(): void {
    this.view.refresh(this.transcript);
  }

  /** Runs inputs one after another (keys sent together, "/think on" then a question, arrive at once). */
  private run(work: () => Promise<void>, input?: string): Promise<void> {
    const start = () => {
      this.abort = new AbortController();
      return work();
    };
    this.running = (this.running ?? Promise.resolve()).then(start).catch((e) => this.fail(e, input)).finally(() => {
      this.state = 'idle';
      this.abort = undefined;
      this.view.phase(undefined);
      this.view.status(this.status());
    });
    return this.running;
  }

  /** Ctrl+C while busy: stop the answer (the partial answer stays in the conversation). */
  interrupt(): boolean {
    if (this.state === 'idle') return false;
    this.abort?.abort();
    return true;
  }

  /** Shows or folds the last answer's thinking (Ctrl+T, /thinking). */
  toggleThinking(): void {
    const i = this.transcript.map((e) => e.type).lastIndexOf('thinking');
    if (i < 0) return this.notice('no thinking to show yet (turn it on with /think on)', 'dim');
    const e = this.transcript[i] as Extract<Entry, { type: 'thinking' }>;
    this.transcript[i] = { ...e, expanded: !e.expanded };
    this.view.refresh(this.transcript);
  }

  /** Leaving: the answer in progress is stopped, a conversation being saved is saved, the engine stops. */
  async leave(): Promise<void> {
    this.abort?.abort();
    await this.running?.catch(() => {});
    this.autosave();
    await this.session.close();
  }

  status(): Status {
    const s = this.session;
    const d = s.last?.done;
    const decoded = d ? d.completion_tokens - 1 : 0;
    return {
      model: this.opts.modelName, device: s.info.backend, contextUsed: s.contextUsed, contextSize: s.info.maxPositions,
      tokensPerSecond: d && decoded > 0 && d.timings.decode_ms > 0 ? (decoded * 1000) / d.timings.decode_ms : undefined,
      firstTokenMs: d && d.completion_tokens > 0 ? d.timings.first_token_ms : undefined,
      think: s.settings.think || s.settings.thinkBudget !== undefined, budget: s.settings.thinkBudget,
      savingTo: this.savingTo ? basename(this.savingTo) : undefined,
    };
  }

  /** A line in the chat (engine warnings and logs come here, not to stderr, which the view owns). */
  notice(text: string, tone: Extract<Entry, { type: 'notice' }>['tone'] = 'info'): void {
    const e: Entry = { type: 'notice', text, tone };
    this.transcript.push(e);
    this.view.entry(e);
  }

  private show(e: Entry): void {
    this.transcript.push(e);
    this.view.entry(e);
  }

  private fail(e: unknown, input?: string): void {
    this.view.turnEnded();
    const msg = e instanceof OvisError ? e.message : `internal error: ${(e as Error)?.stack ?? String(e)}`;
    this.notice(msg, e instanceof InterruptedError ? 'dim' : 'error');
    if (input !== undefined) this.view.restoreInput(input);
  }

  private async message(input: string): Promise<void> {
    const found = findMediaPaths(input);
    if (found.missing.length > 0) {
      this.notice(`no such file: ${found.missing.join(', ')} (check the path; /image PATH attaches explicitly)`, 'error');
      this.view.restoreInput(input);
      return;
    }
    const before = this.transcript.length;
    this.show({ type: 'user', text: input });
    this.state = 'preparing';
    const attachments = [...this.pending];
    this.pending = [];
    try {
      for (const m of found.media) attachments.push(await this.attach(m, attachments));
      if (this.abort?.signal.aborted) throw new InterruptedError('stopped before the message was sent');
    } catch (e) {
      // The /image attachments stay for the next try.
      this.pending = attachments.filter((a) => !found.media.some((m) => m.source === a.arg.source));
      this.transcript = this.transcript.slice(0, before);
      throw e;
    }
    const sent = await this.turn((hooks) => this.session.ask(found.text, attachments, hooks), input, attachments);
    if (!sent) this.transcript = this.transcript.slice(0, before);
  }

  private async attach(m: MediaArg, pending: readonly Attached[]): Promise<Attached> {
    this.view.phase(`preparing ${basename(m.source)}`);
    const a = await this.session.attach(m, pending);
    this.show({ type: 'attachment', text: describeAttachment(m, a.loaded) });
    return a;
  }

  /**
   * Streams one turn into the view. False when it was stopped before any token: nothing was added
   * to the conversation, `input` comes back to the input box and the /image attachments stay.
   */
  private async turn(run: (hooks: Parameters<ChatSession['ask']>[2]) => Promise<TurnReport>, input?: string, attached: Attached[] = []): Promise<boolean> {
    this.state = 'generating';
    const abort = this.abort ?? new AbortController();
    const live = new LiveTurn(this.view);
    const loaded = attached.map((a) => a.loaded);
    let clock: EncodeClock | undefined;
    const report = await run({
      onToken: (t) => live.token(t),
      onEncodeStart: (media) => (clock = this.encodes.start(media)),
      onProgress: (p) => {
        if (p.phase === 'vision') clock?.layer(p.done, p.elapsed_ms);
        this.view.phase(describeStep(p, describeMedia(loaded), clock));
      },
      signal: abort.signal,
    });
    const thinking = live.finish(report);
    this.view.turnEnded();
    if (report.withdrawn) {
      // Paths typed in the message come back with its text; /image attachments go back to pending.
      const typed = findMediaPaths(input ?? '').media.map((m) => m.source);
      this.pending = [...attached.filter((a) => !typed.includes(a.arg.source)), ...this.pending];
      this.notice('stopped before the answer began; the message was not sent', 'dim');
      if (input !== undefined) this.view.restoreInput(input);
      return false;
    }
    if (thinking) this.transcript.push(thinking);
    this.transcript.push({ type: 'answer', text: displayText(report.answer) });
    const d = report.done;
    if (d.finish_reason === 'cancelled') this.notice('(stopped)', 'dim');
    else if (d.finish_reason === 'length') {
      const sampled = report.sampled.thinking + report.sampled.answer;
      this.notice(`(cut off at ${formatInt(sampled)} tokens: raise --max-new-tokens${report.answer ? '' : ', or set /budget N'})`, 'warn');
    }
    this.autosave();
    return true;
  }

  private autosave(): void {
    if (!this.savingTo) return;
    try {
      this.session.save(this.savingTo);
    } catch (e) {
      this.notice(`${(e as Error).message}; /save FILE to save elsewhere`, 'error');
    }
  }

  private async command(name: string, arg: string): Promise<void> {
    const s = this.session;
    switch (name) {
      case 'help':
        return this.notice(helpLines(this.opts.plain).join('\n'));
      case 'exit':
      case 'quit':
      case 'bye':
        return this.opts.onExit();
      case 'image':
      case 'video': {
        if (!arg) return this.notice(`/${name} PATH: give the file`, 'error');
        this.state = 'preparing';
        this.pending.push(await this.attach({ kind: name, source: unquotePath(arg) }, this.pending));
        return this.notice('attached: it goes with your next message', 'dim');
      }
      case 'think':
        if (!['on', 'off', ''].includes(arg)) return this.notice('/think on|off', 'error');
        s.settings.think = arg === '' ? !s.settings.think : arg === 'on';
        if (!s.settings.think) s.settings.thinkBudget = undefined;
        return this.notice(`thinking ${s.settings.think ? 'on' : 'off'}`, 'dim');
      case 'budget': {
        if (arg === 'off') {
          s.settings.thinkBudget = undefined;
          return this.notice('thinking budget off', 'dim');
        }
        const n = Number(arg);
        if (!/^\d+$/.test(arg) || n < 1 || n > 40960) return this.notice(`/budget N|off: N is a number of tokens from 1 to 40960, got ${JSON.stringify(arg)}`, 'error');
        s.settings.thinkBudget = n;
        s.settings.think = true;
        return this.notice(`thinking on, at most ${n} tokens`, 'dim');
      }
      case 'system':
        if (arg === '') return this.notice(s.settings.system === undefined ? 'no system prompt' : `system prompt: ${s.settings.system}`);
        s.settings.system = arg === 'off' ? undefined : arg;
        return this.notice(arg === 'off' ? 'system prompt removed' : 'system prompt set (the next turn reads the conversation again)', 'dim');
      case 'clear':
        s.clear();
        this.transcript = [this.transcript[0]];
        this.view.refresh(this.transcript);
        return this.notice('new conversation', 'dim');
      case 'retry':
        return this.retry();
      case 'save': {
        if (!arg) return this.notice('/save FILE: give the file name', 'error');
        s.save(arg);
        this.savingTo = arg;
        return this.notice(`saved ${s.conversation.messages.length} messages to ${arg}; it is saved again after each turn`, 'dim');
      }
      case 'load':
        return this.load(arg);
      case 'stats':
        return this.notice(statsLines(s, this.status()).join('\n'));
      case 'thinking':
        return this.toggleThinking();
      default:
        return this.notice(`unknown command /${name}\n${helpLines(this.opts.plain).join('\n')}`, 'error');
    }
  }

  private async retry(): Promise<void> {
    if (!this.session.conversation.messages.some((m) => m.role === 'user')) return this.notice('nothing to retry yet', 'error');
    // The old answer leaves the transcript (a redraw shows only the new one).
    let end = this.transcript.map((e) => e.type).lastIndexOf('user') + 1;
    while (this.transcript[end]?.type === 'attachment') end += 1;
    if (end > 0) this.transcript = this.transcript.slice(0, end);
    this.notice('answering again', 'dim');
    await this.turn((hooks) => this.session.retry(hooks));
  }

  private async load(path: string): Promise<void> {
    if (!path) return this.notice('/load FILE: give the file name', 'error');
    this.state = 'preparing';
    this.view.phase(`reading ${path}`);
    await this.session.load(path);
    this.transcript = [this.transcript[0], ...this.transcriptOf(this.session)];
    this.view.refresh(this.transcript);
    this.notice(`loaded ${this.session.conversation.messages.length} messages from ${path}`, 'dim');
    if (this.session.awaitsAnswer) await this.turn((hooks) => this.session.answerPending(hooks));
  }

  /** Entries for a conversation that was loaded rather than typed. */
  private transcriptOf(s: ChatSession): Entry[] {
    const out: Entry[] = [];
    let media = 0;
    for (const m of s.conversation.messages) {
      if (m.role === 'assistant') {
        if (m.reasoning) out.push({ type: 'thinking', tokens: 0, text: displayText(m.reasoning), expanded: false });
        out.push({ type: 'answer', text: displayText(typeof m.content === 'string' ? m.content : '') });
        continue;
      }
      const text = typeof m.content === 'string' ? m.content : m.content.map((c) => (c.type === 'text' ? c.text : '')).filter(Boolean).join('\n');
      out.push({ type: 'user', text: displayText(text) });
      for (let i = 0; i < mediaCountOf(m.content); i++, media++) {
        const arg = s.conversation.media[media];
        const loaded = s.loadedMedia[media];
        if (arg && loaded) out.push({ type: 'attachment', text: describeAttachment(arg, loaded) });
      }
    }
    return out;
  }
}

/** The turn being streamed: what the view shows, with each channel trimmed as the answer is kept. */
class LiveTurn {
  private thinkingText = '';
  private thinkingTokens = 0;
  private answering = false;
  private readonly thinking: ChannelPrinter;
  private readonly answer: ChannelPrinter;

  constructor(private readonly view: ChatView) {
    this.thinking = new ChannelPrinter((s) => {
      this.thinkingText += s;
      view.thinking(displayText(s));
    });
    this.answer = new ChannelPrinter((s) => view.answer(displayText(s)));
  }

  token(t: TokenOut): void {
    this.view.phase(undefined);
    if (t.channel === 'thinking') {
      if (!t.forced) this.thinkingTokens += 1;
      if (t.id !== THINK_START && t.id !== THINK_END) this.thinking.print(t.text);
      return;
    }
    if (!this.answering) this.startAnswer();
    this.answer.print(t.text);
  }

  private startAnswer(): void {
    this.answering = true;
    this.view.answerStarted(this.folded());
  }

  private folded(text = this.thinkingText): Entry | undefined {
    return this.thinkingTokens > 0 ? { type: 'thinking', tokens: this.thinkingTokens, text: displayText(text), expanded: false } : undefined;
  }

  /** At the end: the thinking entry of the turn (if it thought), its text made final. */
  finish(report: TurnReport): Entry | undefined {
    if (!this.answering && !report.withdrawn) this.startAnswer();
    return this.folded(report.thinking || this.thinkingText);
  }
}

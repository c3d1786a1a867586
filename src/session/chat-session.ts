// One chat: the conversation, its media, the settings a user changes between turns, and the
// Backend that answers (the local engine, whose session cache is kept across turns so each turn
// prefills only what it does not hold; or a server given by --endpoint). No terminal I/O: `ovis chat`'s interfaces (src/ui, src/cli/chat-plain.ts) drive it.
import { randomInt } from 'node:crypto';
import { UsageError } from '../errors.js';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { Logger } from '../output/logger.js';
import { createProgress, silentProgress } from '../output/progress.js';
import type { ContentItem } from '../prompt/index.js';
import type { DoneEvent } from '../protocol/index.js';
import { checkMediaMix, loadMedium, type LoadedMedium, type MediaOptions } from '../cli/load-media.js';
import type { MediaArg } from '../cli/media-args.js';
import { readMessagesFile } from '../cli/messages-file.js';
import type { SamplingFlags } from '../cli/sampling.js';
import type { Attached, Backend, BackendInfo } from './backend.js';
import { ChannelText } from './collect.js';
import { LocalBackend } from './local-backend.js';
import { mediaCountOf, type Conversation, type ConversationMessage } from './conversation.js';
import { writeConversationFile, type WriteResult } from './conversation-file.js';
import type { TurnHooks } from './turn.js';

export type { Attached } from './backend.js';

export interface ChatSettings extends SamplingFlags {
  think: boolean;
  thinkBudget?: number;
  system?: string;
  maxNewTokens: number;
  media: MediaOptions;
}

export interface TurnReport {
  answer: string;
  thinking: string;
  done: DoneEvent;
  /** Tokens the model sampled while thinking and while answering. */
  sampled: { thinking: number; answer: number };
  /** Cancelled before any token: nothing was added to the conversation. */
  withdrawn: boolean;
}

export interface SessionTotals {
  turns: number;
  promptTokens: number;
  cachedTokens: number;
  completionTokens: number;
}

const SESSION = 'chat';
export const ENGINE_RESTARTED = 'the engine stopped; starting it again (the conversation is kept and read again)';
export const CONTEXT_HINT = ': /clear, or /save it and start again';

export class ChatSession {
  conversation: Conversation = { messages: [], media: [] };
  /** Patches of `conversation.media`, index for index. */
  private loaded: LoadedMedium[] = [];
  private requests = 0;
  private readonly baseSeed: number;
  last?: TurnReport;
  totals: SessionTotals = { turns: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };

  /** `backend` answers (src/cli/open-backend.ts); the session closes it. */
  constructor(
    private readonly backend: Backend,
    readonly settings: ChatSettings,
    private readonly log: Logger,
    private readonly lora?: string,
  ) {
    // Each request gets the next seed: a --seed makes the whole chat repeatable, and /retry still
    // gives a new answer.
    this.baseSeed = settings.seed ?? randomInt(0, 2 ** 40);
  }

  /** A chat with the engine on this machine (what `ovis chat` without --endpoint opens). */
  /** `lora`: a LoRA adapter directory merged at load (`--lora`), kept for an engine restart. */
  static async start(modelDir: string, defaults: GenerationDefaults, settings: ChatSettings, device: string, log: Logger, verbose: boolean, lora?: string): Promise<ChatSession> {
    const progress = createProgress({ verbose });
    try {
      const backend = await LocalBackend.start(modelDir, defaults, { device, verbose, lora, restartProgress: silentProgress, warnOnRestart: ENGINE_RESTARTED, contextHint: CONTEXT_HINT }, log, progress);
      return new ChatSession(backend, settings, log);
    } finally {
      progress.stop();
    }
  }

  /** generation_config.json's defaults (local); undefined where a server applies its own. */
  get defaults(): GenerationDefaults | undefined {
    return this.backend.defaults;
  }

  /** Patches of the conversation's media, index for index with `conversation.media`. */
  get loadedMedia(): readonly LoadedMedium[] {
    return this.loaded;
  }

  get info(): BackendInfo {
    return this.backend.info;
  }

  /** Positions the conversation holds (the engine's KV cache; a server's last usage) of `info.maxPositions`. */
  get contextUsed(): number {
    return this.backend.contextUsed(SESSION);
  }

  /** Loads a medium for the next message; the model's mix rule is checked with what is already there. */
  async attach(arg: MediaArg, pending: readonly Attached[]): Promise<Attached> {
    checkMediaMix([...this.conversation.media, ...pending.map((p) => p.arg), arg]);
    return { arg, loaded: await loadMedium(arg, this.settings.media, this.log) };
  }

  /** Sends a user message (media first, then the text, as the reference's chat()) and streams the answer. */
  ask(text: string, attachments: readonly Attached[], hooks: TurnHooks): Promise<TurnReport> {
    if (!text.trim() && attachments.length === 0) throw new UsageError('an empty message: type a question, or attach an image with /image PATH');
    const content: string | ContentItem[] = attachments.length === 0 ? text : [...attachments.map((a): ContentItem => ({ type: a.arg.kind })), ...(text ? [{ type: 'text' as const, text }] : [])];
    return this.turn({ role: 'user', content }, attachments, hooks);
  }

  /** Answers the last user message again (a new sample); the conversation's earlier cache is reused. */
  retry(hooks: TurnHooks): Promise<TurnReport> {
    const msgs = this.conversation.messages;
    const lastUser = msgs.map((m) => m.role).lastIndexOf('user');
    if (lastUser < 0) throw new UsageError('nothing to retry: no question has been asked yet');
    const pending = this.popFrom(lastUser);
    return this.turn(pending.message, pending.attached, hooks);
  }

  /** A conversation ending in a user message (a loaded file) gets its answer. */
  get awaitsAnswer(): boolean {
    return this.conversation.messages.at(-1)?.role === 'user';
  }

  answerPending(hooks: TurnHooks): Promise<TurnReport> {
    return this.retry(hooks);
  }

  /** Forgets the conversation (the system prompt and settings stay; the engine keeps what it can reuse). */
  clear(): void {
    this.conversation = { messages: [], media: [] };
    this.loaded = [];
    this.last = undefined;
  }

  save(path: string): WriteResult {
    const system: ConversationMessage[] = this.settings.system !== undefined ? [{ role: 'system', content: this.settings.system }] : [];
    return writeConversationFile(path, { messages: [...system, ...this.conversation.messages], media: this.conversation.media });
  }

  /** Replaces the conversation with a saved one (its system prompt included); nothing changes if a medium fails to load. */
  async load(path: string): Promise<void> {
    const conv = readMessagesFile(path, '/load');
    const loaded: LoadedMedium[] = [];
    for (const m of conv.media) loaded.push(await loadMedium(m, this.settings.media, this.log));
    const [first, ...rest] = conv.messages;
    const hasSystem = first?.role === 'system';
    if (hasSystem) this.settings.system = typeof first.content === 'string' ? first.content : first.content.map((c) => (c.type === 'text' ? c.text : '')).join('\n');
    this.conversation = { messages: hasSystem ? rest : conv.messages, media: conv.media };
    this.loaded = loaded;
    this.last = undefined;
  }

  async close(): Promise<void> {
    await this.backend.close();
  }

  private popFrom(index: number): { message: ConversationMessage; attached: Attached[] } {
    const msgs = this.conversation.messages;
    const message = msgs[index];
    const before = msgs.slice(0, index).reduce((n, m) => n + (m.role === 'assistant' ? 0 : mediaCountOf(m.content)), 0);
    const count = mediaCountOf(message.content);
    const attached = this.conversation.media.slice(before, before + count).map((arg, i) => ({ arg, loaded: this.loaded[before + i] }));
    this.conversation = { messages: msgs.slice(0, index), media: this.conversation.media.slice(0, before) };
    this.loaded = this.loaded.slice(0, before);
    return { message, attached };
  }

  private async turn(user: ConversationMessage, attachments: readonly Attached[], hooks: TurnHooks): Promise<TurnReport> {
    const media = [...this.conversation.media, ...attachments.map((a) => a.arg)];
    checkMediaMix(media);
    const loaded = [...this.loaded, ...attachments.map((a) => a.loaded)];
    const system: ConversationMessage[] = this.settings.system !== undefined ? [{ role: 'system', content: this.settings.system }] : [];
    const think = this.settings.think || this.settings.thinkBudget !== undefined;
    const text = new ChannelText();
    const onToken = hooks.onToken;
    const result = await this.backend.answer({
      session: SESSION, messages: [...system, ...this.conversation.messages, user], media: media.map((arg, i) => ({ arg, loaded: loaded[i] })),
      think, thinkBudget: this.settings.thinkBudget, maxNewTokens: this.settings.maxNewTokens,
      sampling: { ...this.settings, seed: (this.baseSeed + this.requests++) % 2 ** 53 }, topLogprobs: 0,
    }, { ...hooks, onToken: (t) => { text.push(t); onToken(t); } });
    if (result.tail) text.pushTail(result.tail, result.tailChannel);
    const done = result.done;
    // Nothing came (stopped before the first token, locally or remotely): nothing was said.
    const withdrawn = result.ids.length === 0 && text.sampled.thinking + text.sampled.answer === 0;
    const report: TurnReport = { answer: text.answer, thinking: text.thinking, done, sampled: { ...text.sampled }, withdrawn };
    if (!report.withdrawn) {
      const assistant: ConversationMessage = { role: 'assistant', content: report.answer, ...(report.thinking ? { reasoning: report.thinking } : {}) };
      this.conversation = { messages: [...this.conversation.messages, user, assistant], media };
      this.loaded = loaded;
      this.totals.turns += 1;
    }
    this.totals.promptTokens += done.prompt_tokens;
    this.totals.cachedTokens += done.cached_tokens;
    this.totals.completionTokens += done.completion_tokens;
    this.last = report;
    return report;
  }
}

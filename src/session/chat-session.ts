// One chat with the engine: the conversation, its media, the settings a user changes between turns,
// and the engine session kept across turns so each turn prefills only what the cache does not hold
// (SessionCache). No terminal I/O: `ovis chat`'s interfaces (src/ui, src/cli/chat-plain.ts) drive it.
import { randomInt } from 'node:crypto';
import { InputError, UsageError } from '../errors.js';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { Logger } from '../output/logger.js';
import { createProgress, silentProgress } from '../output/progress.js';
import { PromptBuilder, type ChatMessage, type ContentItem } from '../prompt/index.js';
import type { DoneEvent, ModelInfo } from '../protocol/index.js';
import { checkMediaMix, loadMedium, type LoadedMedium, type MediaOptions } from '../cli/load-media.js';
import type { MediaArg } from '../cli/media-args.js';
import { readMessagesFile } from '../cli/messages-file.js';
import { samplingFrom, type SamplingFlags } from '../cli/sampling.js';
import { detokenizerFor } from '../cli/detokenizer.js';
import { CliTimings } from '../cli/cli-timings.js';
import { startEngine, startModel, type LoadedEngine } from '../cli/start-engine.js';
import { runAnswer } from './answer.js';
import { ChannelText } from './collect.js';
import { mediaCountOf, type Conversation, type ConversationMessage } from './conversation.js';
import { writeConversationFile, type WriteResult } from './conversation-file.js';
import { SessionCache } from './session-cache.js';
import type { TurnHooks } from './turn.js';

export interface ChatSettings extends SamplingFlags {
  think: boolean;
  thinkBudget?: number;
  system?: string;
  maxNewTokens: number;
  media: MediaOptions;
}

/** A medium ready to send: what was asked for, and its patches. */
export interface Attached {
  arg: MediaArg;
  loaded: LoadedMedium;
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

export class ChatSession {
  conversation: Conversation = { messages: [], media: [] };
  /** Patches of `conversation.media`, index for index. */
  private loaded: LoadedMedium[] = [];
  private cache = new SessionCache();
  private requests = 0;
  private readonly baseSeed: number;
  last?: TurnReport;
  totals: SessionTotals = { turns: 0, promptTokens: 0, cachedTokens: 0, completionTokens: 0 };

  private constructor(
    private engine: LoadedEngine,
    readonly prompts: PromptBuilder,
    readonly modelDir: string,
    readonly defaults: GenerationDefaults,
    readonly settings: ChatSettings,
    private readonly device: string,
    private readonly log: Logger,
    private readonly lora?: string,
  ) {
    // Each request gets the next seed: a --seed makes the whole chat repeatable, and /retry still
    // gives a new answer.
    this.baseSeed = settings.seed ?? randomInt(0, 2 ** 40);
  }

  /** `lora`: a LoRA adapter directory merged at load (`--lora`), kept for an engine restart. */
  static async start(modelDir: string, defaults: GenerationDefaults, settings: ChatSettings, device: string, log: Logger, verbose: boolean, lora?: string): Promise<ChatSession> {
    const progress = createProgress({ verbose });
    const { engine, tokenizer } = await startModel(modelDir, { device, verbose, lora }, log, progress, new CliTimings());
    try {
      return new ChatSession(engine, await tokenizer, modelDir, defaults, settings, device, log, lora);
    } catch (e) {
      await engine.close();
      throw e;
    } finally {
      progress.stop();
    }
  }

  /** Patches of the conversation's media, index for index with `conversation.media`. */
  get loadedMedia(): readonly LoadedMedium[] {
    return this.loaded;
  }

  get info(): ModelInfo {
    return this.engine.info!;
  }

  /** KV-cache positions the conversation holds in the engine (of `info.llm.max_positions`). */
  get contextUsed(): number {
    return this.cache.length;
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
    await this.engine.close();
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
    await this.ensureEngine();
    const media = [...this.conversation.media, ...attachments.map((a) => a.arg)];
    checkMediaMix(media);
    const loaded = [...this.loaded, ...attachments.map((a) => a.loaded)];
    const system: ChatMessage[] = this.settings.system !== undefined ? [{ role: 'system', content: this.settings.system }] : [];
    const messages: ChatMessage[] = [...system, ...this.conversation.messages, user];
    const think = this.settings.think || this.settings.thinkBudget !== undefined;
    const { ids } = this.prompts.encode(messages, { enableThinking: think, grids: loaded.map((m) => m.grid), kinds: loaded.map((m) => m.kind) });
    const max = this.info.llm.max_positions;
    if (ids.length >= max) {
      throw new InputError(`the conversation needs ${ids.length.toLocaleString('en-US')} positions but the model's context is ${max.toLocaleString('en-US')}: /clear, or /save it and start again`);
    }
    const keep = this.cache.keepFor(ids, loaded);
    const fresh = loaded.slice(SessionCache.mediaBefore(ids, keep));
    const text = new ChannelText();
    const onToken = hooks.onToken;
    let result;
    try {
      result = await runAnswer(this.engine, detokenizerFor(this.prompts), {
        session: SESSION, keep, ids: ids.slice(keep), media: fresh.map((m) => ({ kind: m.kind, grid: m.grid })), pixels: fresh.map((m) => m.pixels),
        maxNewTokens: this.settings.maxNewTokens,
        sampling: samplingFrom({ ...this.settings, seed: (this.baseSeed + this.requests++) % 2 ** 53 }, this.defaults),
        stopIds: this.defaults.stopIds, topLogprobs: 0, thinking: think,
      }, { ...hooks, onToken: (t) => { text.push(t); onToken(t); } }, this.settings.thinkBudget);
    } catch (e) {
      if (this.engine.running) this.cache.truncate(keep);
      else this.cache.clear();
      throw e;
    }
    if (result.tail) text.pushTail(result.tail, result.tailChannel);
    const done = result.done;
    this.cache.set(Int32Array.from([...ids, ...result.ids]), loaded, keep + result.cached);
    const report: TurnReport = { answer: text.answer, thinking: text.thinking, done, sampled: { ...text.sampled }, withdrawn: result.ids.length === 0 };
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

  /** A crashed engine is started again; the conversation survives and is prefilled anew. */
  private async ensureEngine(): Promise<void> {
    if (this.engine.running) return;
    this.log.warn('the engine stopped; starting it again (the conversation is kept and read again)');
    this.cache.clear();
    // The chat owns the screen: no spinner on stderr (the view shows the phase).
    this.engine = await startEngine(this.modelDir, { device: this.device, verbose: false, lora: this.lora }, this.log, silentProgress);
  }
}

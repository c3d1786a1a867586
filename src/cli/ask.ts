// `ovis ask [options] [PROMPT...]`: one question (with optional media), the answer streamed to stdout.
// With --each, the same prompt for many files (ask-each.ts).
import { existsSync } from 'node:fs';
import { Command } from 'commander';
import { InterruptedError, UsageError } from '../errors.js';
import { buildUserContent, type ChatMessage } from '../prompt/index.js';
import { JsonlWriter } from '../output/jsonl-writer.js';
import { createLogger, type Logger } from '../output/logger.js';
import { createProgress, type Progress } from '../output/progress.js';
import { TextWriter } from '../output/text-writer.js';
import type { Attached, Backend } from '../session/backend.js';
import { ChannelText } from '../session/collect.js';
import { emptyConversation, type Conversation } from '../session/conversation.js';
import { writeConversationFile } from '../session/conversation-file.js';
import type { TokenOut, TurnResult } from '../session/turn.js';
import { addAskOptions, type AskOptions } from './ask-options.js';
import { EncodeNotice } from './encode-notice.js';
import { runEach } from './ask-each.js';
import { CliTimings } from './cli-timings.js';
import { Interrupts } from './interrupts.js';
import { loadMedium, checkMediaMix, visualTokens, type LoadedMedium } from './load-media.js';
import { mediaKindOfPath, splitPositionals, type MediaArg } from './media-args.js';
import { readMessagesFile } from './messages-file.js';
import { openBackend } from './open-backend.js';
import { readStdinText, joinPrompt } from './stdin.js';

export function askCommand(): Command {
  const cmd = new Command('ask')
    .description('answer one prompt; media files among the arguments are attached')
    .argument('[prompt...]', 'prompt words and image/video files (stdin, when piped, comes first)');
  addAskOptions(cmd);
  return cmd.action(async (args: string[], opts: AskOptions) => (opts.each !== undefined ? runEach(args, opts) : runAsk(args, opts)));
}

function checkConversationOptions(opts: AskOptions): void {
  if (opts.continue && opts.messages) throw new UsageError('--continue FILE already reads the earlier turns from FILE: give --continue or --messages, not both');
  if (opts.continue && opts.save) throw new UsageError('--continue FILE writes the conversation back to FILE: give --continue or --save, not both');
}

/** The earlier turns: --continue's file (a missing one starts a new conversation) or --messages. */
function readHistory(opts: AskOptions): Conversation {
  if (opts.continue) return existsSync(opts.continue) ? readMessagesFile(opts.continue, '--continue') : emptyConversation();
  return opts.messages ? readMessagesFile(opts.messages) : emptyConversation();
}

export async function runAsk(args: string[], opts: AskOptions): Promise<void> {
  const timings = new CliTimings();
  const log = createLogger({ verbose: opts.verbose });
  checkConversationOptions(opts);
  const { media, words } = splitPositionals(args);
  // An attachment of unknown extension is tried as an image (the decoder reports unreadable files).
  for (const a of opts.attach) media.push({ kind: a === '-' ? 'image' : (mediaKindOfPath(a) ?? 'image'), source: a });
  const stdinUsedForImage = opts.attach.includes('-');
  const piped = stdinUsedForImage ? '' : await readStdinText();
  const text = joinPrompt(piped, words);
  const history = readHistory(opts);
  const endsWithUser = history.messages.at(-1)?.role === 'user';
  if (!text.trim() && media.length === 0 && !endsWithUser) {
    throw new UsageError('no prompt: give it as arguments or on standard input, e.g. ovis ask "Why is the sky blue?"');
  }
  if (opts.topLogprobs > 0 && !opts.json) throw new UsageError('--top-logprobs needs --json (log-probabilities are only printed as JSON)');
  if (opts.thinkBudget !== undefined) opts.think = true;
  if (opts.system !== undefined && history.messages[0]?.role === 'system') throw new UsageError(`--system and a system message in ${opts.continue ?? opts.messages}: give one of them`);
  checkMediaMix([...history.media, ...media]);
  const progress = createProgress({ verbose: opts.verbose });
  const { backend } = await openBackend(opts, log, progress, timings, {
    restartProgress: progress, contextHint: ': shorten the prompt, or give fewer or smaller media (--max-pixels)',
  });
  const interrupts = new Interrupts(() => backend.kill());
  try {
    const loaded: LoadedMedium[] = [];
    for (const m of [...history.media, ...media]) {
      progress.phase(`preparing ${m.source === '-' ? 'the image on standard input' : m.source}`);
      loaded.push(await timings.time('media', loadMedium(m, opts, log)));
      // Ctrl-C while a video is sampled: stop here rather than after the prefill.
      if (interrupts.abortSignal.aborted) throw new InterruptedError('interrupted before the question was sent', false, interrupts.signal);
    }
    const messages = buildMessages(text, media, history, opts.system);
    const attached = [...history.media, ...media].map((arg, i) => ({ arg, loaded: loaded[i] }));
    const result = await generate(backend, messages, attached, opts, progress, interrupts, timings, log);
    if (!result) return;
    // A turn stopped before its first token has nothing to keep.
    const answered = result.turn.done.completion_tokens > 0 || result.turn.done.finish_reason !== 'cancelled';
    if ((opts.save || opts.continue) && answered) saveTurn(opts.save ?? opts.continue!, history, messages, media, loaded, result.text, log);
    if (result.turn.done.finish_reason === 'cancelled') {
      const how = interrupts.signal === 'SIGTERM' ? 'terminated' : 'interrupted';
      throw new InterruptedError(`${how}: generation cancelled`, opts.json, interrupts.signal);
    }
  } finally {
    progress.stop();
    await backend.close();
    // Only now: a Ctrl-C while the engine shuts down is still an interruption, not a crash.
    interrupts.dispose();
  }
}

function buildMessages(text: string, media: MediaArg[], history: Conversation, system: string | undefined): ChatMessage[] {
  const messages: ChatMessage[] = [];
  if (system !== undefined) messages.push({ role: 'system', content: system });
  messages.push(...history.messages);
  if (text.trim() || media.length > 0) {
    const content = buildUserContent(text, media.map((m) => m.kind));
    messages.push({ role: 'user', content: content.length === 1 && content[0].type === 'text' ? content[0].text : content });
  }
  return messages;
}

/** Streams the answer to stdout; undefined when the reader went away (`ovis ask … | head -1`). */
async function generate(
  backend: Backend, messages: ChatMessage[], attached: Attached[], opts: AskOptions,
  progress: Progress, interrupts: Interrupts, timings: CliTimings, log: Logger,
): Promise<{ turn: TurnResult; text: ChannelText } | undefined> {
  const writer = opts.json ? new JsonlWriter() : new TextWriter();
  // A reader that goes away ends generation quietly, as Unix tools do. The listener stays for the
  // life of the process: later writes fail the same way.
  let readerGone = false;
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    readerGone = true;
    interrupts.controller.abort();
  });
  const what = describeMedia(attached.map((a) => a.loaded));
  const encodes = encodeNotice(backend, opts, progress, log);
  const text = new ChannelText();
  let emitted = 0;
  const onToken = (t: TokenOut) => {
    progress.stop();
    emitted += 1;
    text.push(t);
    writer.token(t);
  };
  let turn: TurnResult;
  try {
    turn = await backend.answer({
      session: 'ask', messages, media: attached, think: opts.think, thinkBudget: opts.thinkBudget, maxNewTokens: opts.maxNewTokens,
      sampling: opts, topLogprobs: opts.topLogprobs, logprobs: opts.json,
    }, {
      onToken, signal: interrupts.abortSignal,
      onProgress: (p) => {
        // Fed here too, not only by a progress line: --verbose reports the estimate's accuracy.
        if (p.phase === 'vision') progress.encodeClock?.layer(p.done, p.elapsed_ms);
        progress.engine(p, what);
      },
      onEncodeStart: (media) => (progress.encodeClock = encodes.start(media)),
    });
  } catch (e) {
    // A second Ctrl-C killed an engine that did not stop: that is still an interruption.
    if (!interrupts.engineKilled) throw e;
    turn = { ids: [], cached: 0, tail: '', tailChannel: 'answer', done: { id: 0, finish_reason: 'cancelled', prompt_tokens: backend.lastPromptTokens, cached_tokens: 0, completion_tokens: emitted, timings: { vision_ms: 0, prefill_ms: 0, first_token_ms: 0, decode_ms: 0, total_ms: 0 } } };
  }
  progress.stop();
  if (readerGone) return undefined;
  if (turn.tail) text.pushTail(turn.tail, turn.tailChannel);
  if (writer instanceof TextWriter) {
    if (turn.tail) writer.token({ id: -1, text: turn.tail, channel: turn.tailChannel, logprob: 0 });
    writer.end();
  } else {
    writer.done(turn.done, timings.json());
  }
  const d = turn.done;
  const t = d.timings;
  log.verbose(`${d.completion_tokens} tokens (${d.finish_reason}); vision ${t.vision_ms.toFixed(1)} ms, prefill ${t.prefill_ms.toFixed(1)} ms, first token ${t.first_token_ms.toFixed(1)} ms, decode ${t.decode_ms.toFixed(1)} ms`);
  const clock = progress.encodeClock;
  if (clock && t.vision_ms > 0) {
    const after = clock.afterFirstLayerMs === undefined ? '' : `, ${Math.round(clock.afterFirstLayerMs)} ms after the first layer`;
    log.verbose(`vision encode: estimated ${Math.round(clock.estimateMs)} ms before it${after}; took ${Math.round(t.vision_ms)} ms`);
  }
  log.verbose(timings.describe());
  if (d.finish_reason === 'length' && !text.answer && text.sampled.thinking > 0) {
    log.warn(`the answer was cut off: the ${opts.maxNewTokens} tokens of --max-new-tokens went to thinking; raise -n or set --think-budget`);
  }
  return { turn, text };
}

/**
 * The estimate before a CPU encode (shown by `progress`), and the note when it is long: one line on
 * stderr, above the progress line on a terminal (scripts' stdout is untouched).
 */
export function encodeNotice(backend: Backend, opts: AskOptions, progress: Progress, log: Logger): EncodeNotice {
  return new EncodeNotice(backend.info.vision, {
    minPixels: opts.minPixels,
    note: (text) => {
      progress.stop();
      log.info(text);
    },
    verbose: (text) => log.verbose(text),
  });
}

/** "the image", "2 images", "the video (8 frames)": what the engine is encoding. */
export function describeMedia(loaded: readonly LoadedMedium[]): string {
  if (loaded.length === 0) return 'the media';
  const tokens = loaded.reduce((n, m) => n + visualTokens(m.grid), 0).toLocaleString('en-US');
  if (loaded[0].kind === 'video') return `the video (${loaded[0].grid[0]} frames, ${tokens} visual tokens)`;
  return `${loaded.length === 1 ? 'the image' : `${loaded.length} images`} (${tokens} visual tokens)`;
}

function saveTurn(path: string, history: Conversation, messages: ChatMessage[], media: MediaArg[], loaded: LoadedMedium[], text: ChannelText, log: Logger): void {
  // Images read from stdin have no file: they are saved as data: URLs.
  const all = [...history.media, ...media].map((m, i) => (m.source === '-' && loaded[i]?.bytes ? { ...m, bytes: loaded[i].bytes } : m));
  // `messages` holds the history's own message objects, so earlier answers keep their saved thinking.
  const assistant = { role: 'assistant' as const, content: text.answer, ...(text.thinking ? { reasoning: text.thinking } : {}) };
  const { approximated } = writeConversationFile(path, { messages: [...messages, assistant], media: all });
  if (approximated > 0) log.warn(`${path}: the <image>/<video> markers inside the prompt text are saved as separate parts (the model will see them on their own lines)`);
}

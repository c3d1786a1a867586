// `ovis ask [options] [PROMPT...]`: one question (with optional media), the answer streamed to stdout.
import { Command } from 'commander';
import { InterruptedError, UsageError } from '../errors.js';
import { readGenerationDefaults } from '../model/generation-config.js';
import { resolveModelDir } from '../model/resolve.js';
import { PromptBuilder, buildUserContent, type ChatMessage } from '../prompt/index.js';
import { JsonlWriter } from '../output/jsonl-writer.js';
import { createLogger, type Logger } from '../output/logger.js';
import { TextWriter } from '../output/text-writer.js';
import { runTurn, type TokenOut, type TurnRequest } from '../session/turn.js';
import { runBudgetedTurn } from '../session/think-budget.js';
import { addGenerationOptions, type AskOptions } from './ask-options.js';
import { loadMedia, type LoadedMedium } from './load-media.js';
import { mediaKindOfPath, splitPositionals, type MediaArg } from './media-args.js';
import { startEngine } from './start-engine.js';
import { readStdinText, joinPrompt } from './stdin.js';
import { readMessagesFile, type Conversation } from './messages-file.js';
import { samplingFrom } from './sampling.js';
import { detokenizerFor } from './detokenizer.js';

export function askCommand(): Command {
  const cmd = new Command('ask')
    .description('answer one prompt; media files among the arguments are attached')
    .argument('[prompt...]', 'prompt words and image/video files (stdin, when piped, comes first)');
  addGenerationOptions(cmd);
  return cmd.action(async (args: string[], opts: AskOptions) => runAsk(args, opts));
}

export async function runAsk(args: string[], opts: AskOptions): Promise<void> {
  const log = createLogger({ verbose: opts.verbose });
  const { media, words } = splitPositionals(args);
  // An attachment of unknown extension is tried as an image (the decoder reports unreadable files).
  for (const a of opts.attach) media.push({ kind: a === '-' ? 'image' : (mediaKindOfPath(a) ?? 'image'), source: a });
  const stdinUsedForImage = opts.attach.includes('-');
  const piped = stdinUsedForImage ? '' : await readStdinText();
  const text = joinPrompt(piped, words);
  const history = opts.messages ? readMessagesFile(opts.messages) : { messages: [], media: [] };
  const endsWithUser = history.messages.at(-1)?.role === 'user';
  if (!text.trim() && media.length === 0 && !endsWithUser) {
    throw new UsageError('no prompt: give it as arguments or on standard input, e.g. ovis ask "Why is the sky blue?"');
  }
  if (opts.topLogprobs > 0 && !opts.json) throw new UsageError('--top-logprobs needs --json (log-probabilities are only printed as JSON)');
  if (opts.thinkBudget !== undefined) opts.think = true;
  const modelDir = resolveModelDir(opts.model);
  const defaults = readGenerationDefaults(modelDir);
  // The engine validates the model first (milliseconds), so a broken model directory fails at once,
  // before the tokenizer (about a second to parse) is loaded.
  const engine = await startEngine(modelDir, opts, log);
  let prepared: { ids: Int32Array; loaded: LoadedMedium[]; prompts: PromptBuilder };
  try {
    prepared = await preparePrompt(text, media, history, opts, log, modelDir);
  } catch (e) {
    await engine.close();
    throw e;
  }
  const { ids, loaded, prompts } = prepared;
  const writer = opts.json ? new JsonlWriter() : new TextWriter();
  const abort = new AbortController();
  let interrupts = 0;
  const onSigint = () => {
    interrupts += 1;
    if (interrupts > 1) engine.kill();
    abort.abort();
  };
  process.on('SIGINT', onSigint);
  // A reader that goes away (`ovis ask … | head -1`) ends generation quietly, as Unix tools do.
  let readerGone = false;
  // The listener stays for the life of the process: later writes fail the same way.
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    readerGone = true;
    abort.abort();
  });
  try {
    const request: TurnRequest = {
      session: 'ask', keep: 0, ids, media: loaded.map((m) => ({ kind: m.kind, grid: m.grid })), pixels: loaded.map((m) => m.pixels),
      maxNewTokens: opts.maxNewTokens, sampling: samplingFrom(opts, defaults), stopIds: defaults.stopIds,
      topLogprobs: opts.topLogprobs, thinking: opts.think,
    };
    const onToken = (t: TokenOut) => writer.token(t);
    const result = opts.thinkBudget !== undefined
      ? await runBudgetedTurn(engine, detokenizerFor(prompts), request, opts.thinkBudget, onToken, abort.signal)
      : await runTurn(engine, detokenizerFor(prompts), request, onToken, abort.signal);
    if (readerGone) return;
    if (writer instanceof TextWriter) {
      if (result.tail) writer.token({ id: -1, text: result.tail, channel: result.tailChannel, logprob: 0 });
      writer.end();
    } else {
      writer.done(result.done);
    }
    const t = result.done.timings;
    log.verbose(`${result.done.completion_tokens} tokens (${result.done.finish_reason}); vision ${t.vision_ms.toFixed(1)} ms, prefill ${t.prefill_ms.toFixed(1)} ms, first token ${t.first_token_ms.toFixed(1)} ms, decode ${t.decode_ms.toFixed(1)} ms`);
    if (result.done.finish_reason === 'cancelled') throw new InterruptedError('interrupted: generation cancelled', opts.json);
  } finally {
    process.off('SIGINT', onSigint);
    await engine.close();
  }
}

/** Tokenizer, media and chat template → the engine's input ids. */
async function preparePrompt(text: string, media: MediaArg[], history: Conversation, opts: AskOptions, log: Logger, modelDir: string) {
  const prompts = await PromptBuilder.load(modelDir);
  const loaded = await loadMedia([...history.media, ...media], opts, log);
  const messages: ChatMessage[] = [];
  if (opts.system !== undefined) {
    if (history.messages[0]?.role === 'system') throw new UsageError('--system and a system message in --messages: give one of them');
    messages.push({ role: 'system', content: opts.system });
  }
  messages.push(...history.messages);
  if (text.trim() || media.length > 0) {
    const content = buildUserContent(text, media.map((m) => m.kind));
    messages.push({ role: 'user', content: content.length === 1 && content[0].type === 'text' ? content[0].text : content });
  }
  const { ids } = prompts.encode(messages, { enableThinking: opts.think, grids: loaded.map((m) => m.grid), kinds: loaded.map((m) => m.kind) });
  log.verbose(`prompt: ${ids.length} positions, ${loaded.length} media`);
  return { ids, loaded, prompts };
}

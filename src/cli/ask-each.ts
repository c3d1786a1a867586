// `ovis ask --each PROMPT FILE...`: the same prompt for every image or video, the model loaded once.
// One JSON line per file in input order ({"file","answer","thinking","finish_reason","usage","timings"}
// or {"file","error":{"code","message"}}), or with --format text a "== FILE ==" header before each
// answer. A file that fails does not stop the others; the exit code is 3 if any failed. The next
// file is prepared (decoded, resized) while the engine answers the current one.
import { readFileSync } from 'node:fs';
import { AuthError, BusyError, InputError, InterruptedError, NetworkError, OvisError, UsageError } from '../errors.js';
import { createLogger, type Logger } from '../output/logger.js';
import { createProgress, type Progress } from '../output/progress.js';
import { TextWriter } from '../output/text-writer.js';
import { buildUserContent, type ChatMessage } from '../prompt/index.js';
import type { Attached, Backend } from '../session/backend.js';
import { ChannelText } from '../session/collect.js';
import type { TurnResult } from '../session/turn.js';
import type { AskOptions } from './ask-options.js';
import { describeMedia, encodeNotice } from './ask.js';
import type { EncodeNotice } from './encode-notice.js';
import { CliTimings } from './cli-timings.js';
import { Interrupts } from './interrupts.js';
import { loadMedium } from './load-media.js';
import { mediaKindOfPath, type MediaArg } from './media-args.js';
import { openBackend } from './open-backend.js';

function checkEachOptions(opts: AskOptions, files: string[]): void {
  const clash = (['messages', 'save', 'continue'] as const).find((k) => opts[k] !== undefined);
  if (clash) throw new UsageError(`--each answers each file on its own: it cannot be combined with --${clash}`);
  if (opts.attach.length > 0) throw new UsageError('--each takes the files as arguments: FILE... (or - to read names from stdin), not --attach');
  if (opts.topLogprobs > 0) throw new UsageError('--top-logprobs is not available with --each');
  if (opts.json && opts.format === 'text') throw new UsageError('--json and --format text disagree: --each writes JSON lines by default');
  if (files.length === 0) throw new UsageError('--each needs files: ovis ask --each "Describe this image." *.jpg (or - to read one name per line from stdin)');
}

/** The file names: the arguments, or one per line on stdin for `-`. */
function fileList(args: string[]): string[] {
  if (args.length === 1 && args[0] === '-') {
    return readFileSync(0, 'utf8').split(/\r?\n/).map((l) => l.trim()).filter((l) => l !== '');
  }
  return args;
}

interface Output {
  answer(file: string, text: ChannelText, turn: TurnResult): void;
  error(file: string, e: OvisError): void;
}

function jsonOutput(): Output {
  const line = (o: object) => process.stdout.write(`${JSON.stringify(o)}\n`);
  return {
    answer(file, text, turn) {
      const d = turn.done;
      line({
        file, answer: text.answer, thinking: text.thinking, finish_reason: d.finish_reason,
        usage: { prompt_tokens: d.prompt_tokens + d.cached_tokens, cached_tokens: d.cached_tokens, completion_tokens: d.completion_tokens }, timings: d.timings,
      });
    },
    error: (file, e) => line({ file, error: { code: e.code, message: e.message } }),
  };
}

function textOutput(log: Logger): Output {
  return {
    answer(file, text) {
      // Thinking goes to stderr (dim on a terminal), as in `ovis ask`.
      const writer = new TextWriter(process.stdout, process.stderr);
      process.stdout.write(`== ${file} ==\n`);
      if (text.thinking) writer.token({ id: -1, text: text.thinking, channel: 'thinking', logprob: 0 });
      writer.token({ id: -1, text: text.answer, channel: 'answer', logprob: 0 });
      writer.end();
    },
    error(file, e) {
      process.stdout.write(`== ${file} ==\n`);
      log.error(`${file}: ${e.message}`);
    },
  };
}

export async function runEach(args: string[], opts: AskOptions): Promise<void> {
  const files = fileList(args);
  checkEachOptions(opts, files);
  const timings = new CliTimings();
  const log = createLogger({ verbose: opts.verbose });
  if (opts.thinkBudget !== undefined) opts.think = true;
  const progress = createProgress({ verbose: opts.verbose });
  const { backend } = await openBackend(opts, log, progress, timings, { restartProgress: progress, contextHint: ': use a smaller --max-pixels or fewer --frames' });
  const interrupts = new Interrupts(() => backend.kill());
  const out = opts.format === 'text' ? textOutput(log) : jsonOutput();
  const encodes = encodeNotice(backend, opts, progress, log);
  const media = files.map((f): MediaArg => ({ kind: mediaKindOfPath(f) ?? 'image', source: f }));
  // Errors stay inside the promise until their turn, so a bad file 7 is reported in order.
  const prepare = (i: number) => settle(loadMedium(media[i], opts, log));
  let next = prepare(0);
  const stoppedAt = (i: number) => new InterruptedError(`interrupted at ${files[i]} (${i} of ${files.length} files answered)`, false, interrupts.signal);
  let failed = 0;
  const begun = performance.now();
  try {
    for (let i = 0; i < files.length; i++) {
      progress.prefix = batchStatus(i, files.length, begun);
      progress.phase(`preparing ${files[i]}`);
      const ready = await next;
      if (i + 1 < files.length) next = prepare(i + 1);
      try {
        if ('error' in ready) throw ready.error;
        const { text, turn } = await answerOne(backend, { arg: media[i], loaded: ready.value }, opts, progress, interrupts, encodes);
        progress.stop();
        out.answer(files[i], text, turn);
        if (turn.done.finish_reason === 'cancelled') throw stoppedAt(i);
      } catch (e) {
        if (interrupts.engineKilled) throw stoppedAt(i);
        if (e instanceof InterruptedError || !(e instanceof OvisError)) throw e;
        progress.stop();
        failed += 1;
        out.error(files[i], e);
        // An endpoint that cannot be reached, refuses the key or is busy fails every file alike: stop.
        if (e instanceof NetworkError || e instanceof AuthError || e instanceof BusyError) throw e;
      }
    }
  } finally {
    progress.stop();
    interrupts.dispose();
    await backend.close();
  }
  log.verbose(timings.describe());
  if (failed > 0) throw new InputError(`${failed} of ${files.length} files failed (see their error lines)`);
}

async function answerOne(
  backend: Backend, file: Attached, opts: AskOptions, progress: Progress, interrupts: Interrupts, encodes: EncodeNotice,
): Promise<{ text: ChannelText; turn: TurnResult }> {
  const messages: ChatMessage[] = opts.system !== undefined ? [{ role: 'system', content: opts.system }] : [];
  messages.push({ role: 'user', content: buildUserContent(opts.each!, [file.loaded.kind]) });
  // Each file is its own conversation in one session: the local engine reuses the text before the
  // medium (the system prompt) from its cache.
  const text = new ChannelText();
  const turn = await backend.answer({
    session: 'each', messages, media: [file], think: opts.think, thinkBudget: opts.thinkBudget, maxNewTokens: opts.maxNewTokens, sampling: opts, topLogprobs: 0,
  }, {
    onToken: (t) => text.push(t), onProgress: (p) => progress.engine(p, describeMedia([file.loaded])), signal: interrupts.abortSignal,
    onEncodeStart: (m) => (progress.encodeClock = encodes.start(m)),
  });
  if (turn.tail) text.pushTail(turn.tail, turn.tailChannel);
  return { text, turn };
}

/** "3/10 files · 4.2 s/file · ETA 29 s" (rate and ETA once a file is done). */
function batchStatus(done: number, total: number, started: number): string {
  if (done === 0) return `0/${total} files`;
  const per = (performance.now() - started) / 1000 / done;
  return `${done}/${total} files · ${per.toFixed(1)} s/file · ETA ${Math.round(per * (total - done))} s`;
}

async function settle<T>(p: Promise<T>): Promise<{ value: T } | { error: unknown }> {
  try {
    return { value: await p };
  } catch (error) {
    return { error };
  }
}

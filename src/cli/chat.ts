// `ovis chat`: an interactive conversation in the terminal. The model loads once; each turn
// prefills only what the engine's cache does not hold. Ink draws it on a terminal that can redraw;
// plain lines otherwise (TERM=dumb, a terminal of no size, stdout not a terminal).
import { Command } from 'commander';
import { UsageError } from '../errors.js';
import { readGenerationDefaults } from '../model/generation-config.js';
import { createLogger, type Logger } from '../output/logger.js';
import { ChatSession, type ChatSettings } from '../session/chat-session.js';
import { addGenerationOptions, type ChatOptions } from './ask-options.js';
import { readMessagesFile } from './messages-file.js';
import { displayName, modelFor } from './model-arg.js';

export function chatCommand(): Command {
  const cmd = new Command('chat').description('talk with the model in the terminal: streamed answers, images by path, /help for commands');
  addGenerationOptions(cmd)
    .option('--load <file>', 'continue a saved conversation (what /save, ask --save and ask --messages use)')
    .option('--save <file>', 'keep the conversation in FILE: written after every answer and when leaving');
  return cmd.action(runChat);
}

/** Where the chat's diagnostics go: stderr until the screen is the chat's, then lines in the chat. */
class ChatLogger implements Logger {
  sink?: (text: string, tone: 'info' | 'warn' | 'error' | 'dim') => void;
  constructor(private readonly verboseOn: boolean) {}
  private out(text: string, tone: 'info' | 'warn' | 'error' | 'dim'): void {
    if (this.sink) this.sink(text, tone);
    else process.stderr.write(`${tone === 'info' || tone === 'dim' ? '' : `${tone}: `}${text}\n`);
  }
  info = (m: string) => this.out(m, 'info');
  warn = (m: string) => this.out(m, 'warn');
  error = (m: string) => this.out(m, 'error');
  verbose = (m: string) => (this.verboseOn ? this.out(m, 'dim') : undefined);
}

async function runChat(opts: ChatOptions): Promise<void> {
  if (!process.stdin.isTTY) {
    throw new UsageError('ovis chat reads from a terminal, and standard input is not one: for scripts and pipes use ovis ask (e.g. echo "Why is the sky blue?" | ovis ask)');
  }
  if (opts.load) {
    // Read it now: a bad file is an input error before the model loads.
    const conv = readMessagesFile(opts.load, '--load');
    if (opts.system !== undefined && conv.messages[0]?.role === 'system') throw new UsageError(`--system and a system message in ${opts.load}: give one of them`);
  }
  const model = await modelFor(opts.model, createLogger({ verbose: opts.verbose }));
  const modelDir = model.dir;
  const defaults = readGenerationDefaults(modelDir);
  const settings: ChatSettings = {
    think: opts.think || opts.thinkBudget !== undefined, thinkBudget: opts.thinkBudget, system: opts.system, maxNewTokens: opts.maxNewTokens,
    temperature: opts.temperature, topP: opts.topP, topK: opts.topK, repetitionPenalty: opts.repetitionPenalty, seed: opts.seed,
    media: { minPixels: opts.minPixels, maxPixels: opts.maxPixels, frames: opts.frames, maxInputPixels: opts.maxInputPixels },
  };
  const log = new ChatLogger(opts.verbose);
  const session = await ChatSession.start(modelDir, defaults, settings, opts.device, log, opts.verbose, opts.lora);
  const env = process.env;
  const out = process.stdout;
  const modelName = displayName(model);
  const canRedraw = out.isTTY === true && (out.columns ?? 0) > 0 && env.TERM !== 'dumb';
  if (!canRedraw) {
    const { runPlainChat } = await import('./chat-plain.js');
    log.sink = undefined;
    return runPlainChat(session, { modelName, load: opts.load, save: opts.save });
  }
  // Ink draws nothing but <Static> output when it thinks it runs in CI (the CI variable); this is an
  // interactive terminal, so that guess is wrong here. Ink reads the variable when it is imported.
  delete env.CI;
  delete env.CONTINUOUS_INTEGRATION;
  const { runInkChat } = await import('./chat-ink.js');
  const color = !env.NO_COLOR && env.TERM !== 'dumb';
  return runInkChat(session, { modelName, color, load: opts.load, save: opts.save, log });
}

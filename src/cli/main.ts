// The entry point: builds the commander program, runs it, and maps every error to its exit code.
import { Command, CommanderError } from 'commander';
import { ExitCode, InterruptedError, OvisError } from '../errors.js';
import { askCommand } from './ask.js';
import { benchCommand } from './bench.js';
import { chatCommand } from './chat.js';
import { completionCommand } from './completion.js';
import { dataCommand } from './data.js';
import { finetuneCommand } from './finetune.js';
import { infoCommand } from './info.js';
import { listCommand } from './list.js';
import { loraCommand } from './lora.js';
import { pullCommand } from './pull.js';
import { rmCommand } from './rm.js';
import { serveCommand } from './serve.js';

export const VERSION = '0.1.0';

export function buildProgram(): Command {
  const program = new Command('ovis')
    .description('Run the Ovis2.5 vision-language models on your own machine')
    .version(VERSION, '-V, --version')
    .showSuggestionAfterError()
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s), writeOut: (s) => process.stdout.write(s) });
  for (const cmd of [askCommand(), chatCommand(), pullCommand(), listCommand(), rmCommand(), infoCommand(), benchCommand(), serveCommand(), dataCommand(), finetuneCommand(), loraCommand(), completionCommand()]) {
    cmd.exitOverride();
    program.addCommand(cmd);
  }
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const json = argv.includes('--json');
  try {
    await buildProgram().parseAsync(argv, { from: 'user' });
    return ExitCode.ok;
  } catch (e) {
    if (e instanceof CommanderError) {
      // commander already printed the message on stderr (help and version exit 0).
      if (e.exitCode === 0) return ExitCode.ok;
      if (json && !(e instanceof InterruptedError && e.reported)) process.stdout.write(`${JSON.stringify({ type: 'error', code: 'usage', message: e.message.replace(/^error: /, '') })}\n`);
      return ExitCode.usage;
    }
    const err = e instanceof OvisError ? e : undefined;
    const code = err?.code ?? 'internal';
    const message = err ? err.message : `internal error: ${(e as Error)?.stack ?? String(e)}`;
    if (json && !(e instanceof InterruptedError && e.reported)) process.stdout.write(`${JSON.stringify({ type: 'error', code, message })}\n`);
    process.stderr.write(`ovis: ${message}\n`);
    return err?.exitCode ?? ExitCode.internal;
  }
}

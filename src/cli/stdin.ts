// The prompt may come on stdin: read it whole when stdin is not a terminal.
import { InputError } from '../errors.js';

export async function readStdinText(stdin: NodeJS.ReadStream = process.stdin): Promise<string> {
  if (stdin.isTTY) return '';
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stdin) chunks.push(Buffer.from(chunk));
  } catch (e) {
    throw new InputError(`cannot read the prompt from standard input: ${(e as Error).message}`);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.includes('\uFFFD') && !Buffer.from(text, 'utf8').equals(Buffer.concat(chunks))) {
    throw new InputError('standard input is not UTF-8 text: pipe text, or attach binary files with --attach');
  }
  return text;
}

/** stdin text, then the prompt arguments, separated by a blank line when both are present. */
export function joinPrompt(stdinText: string, args: string[]): string {
  const fromArgs = args.join(' ');
  const piped = stdinText.replace(/\r?\n$/, '');
  if (piped && fromArgs) return `${piped}\n\n${fromArgs}`;
  return piped || fromArgs;
}

// The chat's slash commands: which input is a command, and the help text (also in the man page).

export interface Command {
  name: string;
  arg: string;
}

export const COMMANDS: ReadonlyArray<[usage: string, what: string]> = [
  ['/image PATH, /video PATH', 'attach to the next message (typed paths attach too)'],
  ['/think on|off', 'think before answering, or not'],
  ['/budget N|off', 'think at most N tokens, then answer'],
  ['/system TEXT|off', 'set or remove the system prompt (alone: show it)'],
  ['/retry', 'answer the last message again'],
  ['/clear', 'start a new conversation (settings stay)'],
  ['/save FILE', 'save the conversation, and again after each turn'],
  ['/load FILE', 'continue a saved conversation (ask --save files)'],
  ['/thinking', 'show or fold the last thinking (also Ctrl+T)'],
  ['/stats', 'tokens, cache reuse and speed'],
  ['/help', 'this help'],
  ['/exit', 'leave (also Ctrl+D, or Ctrl+C on an empty input)'],
];

export const KEYS: ReadonlyArray<[key: string, what: string]> = [
  ['Enter', 'send'],
  ['Ctrl+J, Alt+Enter', 'new line (pasted text keeps its newlines)'],
  ['Up, Down', 'earlier inputs (and lines of a multi-line input)'],
  ['Ctrl+C', 'stop the answer; on an empty input, leave'],
  ['Ctrl+T', 'show or fold the last thinking'],
  ['Ctrl+A/E, Ctrl+U/K, Ctrl+W', 'line start/end, delete to start/end, delete word'],
];

/** Lines of /help; `plain` for the line-mode chat (a trailing backslash continues a line there). */
export function helpLines(plain: boolean): string[] {
  const width = Math.max(...COMMANDS.map(([u]) => u.length), ...KEYS.map(([k]) => k.length));
  const keys: ReadonlyArray<[string, string]> = plain
    ? [['Enter', 'send'], ['\\ at the end of a line', 'continue on the next line'], ['Ctrl+C', 'stop the answer; on an empty input, leave'], ['Ctrl+D', 'leave']]
    : KEYS;
  return [
    'commands:',
    ...COMMANDS.map(([u, w]) => `  ${u.padEnd(width)}  ${w}`),
    'keys:',
    ...keys.map(([k, w]) => `  ${k.padEnd(width)}  ${w}`),
  ];
}

/**
 * A command, or undefined for a message. Commands are `/word` (letters only): a message that begins
 * with a path (`/home/me/photo.jpg what is this?`) is a message.
 */
export function parseCommand(input: string): Command | undefined {
  const m = /^\/([a-zA-Z]+)(?:\s+([\s\S]*))?$/.exec(input.trim());
  if (!m) return undefined;
  return { name: m[1].toLowerCase(), arg: (m[2] ?? '').trim() };
}

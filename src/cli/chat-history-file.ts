// Earlier chat inputs, kept between runs for Up/Down: one JSON string per line in
// $XDG_STATE_HOME/ovis/chat-history.jsonl (default ~/.local/state). Best effort: a home that
// cannot be written to only means no recall next time.
import { appendFileSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';

const MAX = 500;

export function historyPath(env: NodeJS.ProcessEnv = process.env): string {
  const state = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(state, 'ovis', 'chat-history.jsonl');
}

export function readHistory(path = historyPath()): string[] {
  try {
    const lines = readFileSync(path, 'utf8').split('\n').filter(Boolean);
    // Appends only grow it: cut it back to the last MAX now and then.
    if (lines.length > 2 * MAX) writeFileSync(path, `${lines.slice(-MAX).join('\n')}\n`);
    return lines.slice(-MAX).flatMap((l) => {
      try {
        const v = JSON.parse(l);
        return typeof v === 'string' ? [v] : [];
      } catch {
        return [];
      }
    });
  } catch {
    return [];
  }
}

export function appendHistory(entry: string, path = historyPath()): void {
  try {
    mkdirSync(dirname(path), { recursive: true });
    appendFileSync(path, `${JSON.stringify(entry)}\n`);
  } catch {
    // Recall is a convenience; never fail a chat over it.
  }
}

// What the chat shows, as data: finished transcript entries, the live state of the turn being
// generated, and the status line. The controller (src/cli/chat-controller.ts) produces them; the
// Ink view and the plain line view render them.

export type Entry =
  | { type: 'banner'; title: string; hint: string }
  | { type: 'user'; text: string }
  | { type: 'attachment'; text: string }
  /** A turn's thinking: folded to one line, or shown whole. */
  | { type: 'thinking'; tokens: number; text: string; expanded: boolean }
  | { type: 'answer'; text: string }
  | { type: 'notice'; text: string; tone: 'info' | 'error' | 'warn' | 'dim' };

export interface Status {
  model: string;
  device: string;
  contextUsed: number;
  /** The model's context; unknown for a server that does not say (then only the used part shows). */
  contextSize?: number;
  /** Last turn's decode speed and time to first token; undefined before the first turn. */
  tokensPerSecond?: number;
  firstTokenMs?: number;
  think: boolean;
  budget?: number;
  /** The file the conversation is kept in after each turn (/save). */
  savingTo?: string;
}

/** How the chat tells a view what to show. */
export interface ChatView {
  /** A finished entry, appended below the transcript. */
  entry(e: Entry): void;
  /** What the wait before the first token is doing; undefined clears it. */
  phase(text: string | undefined): void;
  /** Streaming text of the turn being generated. */
  thinking(delta: string): void;
  answer(delta: string): void;
  /**
   * The turn's streaming is over: its live thinking becomes `thinking` (folded) and its live answer
   * text is final. Called when the answer starts (answerStarted) and at the end (turnEnded).
   */
  answerStarted(thinking: Entry | undefined): void;
  turnEnded(): void;
  status(s: Status): void;
  /** Re-render everything (the last thinking was expanded or folded). */
  refresh(entries: readonly Entry[]): void;
  /** The input box gets this text (a withdrawn message comes back for editing). */
  restoreInput(text: string): void;
}

/**
 * Model text made safe to draw: a tab becomes spaces, and every other control character but the
 * newline (CR, backspace, ESC and the C1 controls: byte-level tokens can produce any of them) is
 * shown as U+FFFD, so output can neither move the cursor nor send escape sequences to the terminal.
 */
export const displayText = (text: string): string => text.replace(/\t/g, '    ').replace(/[\x00-\x09\x0b-\x1f\x7f-\x9f]/g, '\uFFFD');

export const formatInt = (n: number) => Math.round(n).toLocaleString('en-US');

/** "1.2k", "41k" for narrow status lines. */
export function compactInt(n: number): string {
  if (n < 1000) return String(n);
  if (n < 10_000) return `${(n / 1000).toFixed(1)}k`;
  return `${Math.round(n / 1000)}k`;
}

/** The status line, fitted to `width` columns: the first of ever shorter forms that fits. */
export function statusLine(s: Status, width: number): string {
  const speed = s.tokensPerSecond !== undefined ? `${s.tokensPerSecond.toFixed(1)} tok/s` : undefined;
  const ttft = s.firstTokenMs !== undefined ? `first token ${(s.firstTokenMs / 1000).toFixed(2)} s` : undefined;
  const shortTtft = s.firstTokenMs !== undefined ? `ttft ${(s.firstTokenMs / 1000).toFixed(1)}s` : undefined;
  const think = s.budget !== undefined ? `think ≤${s.budget}` : s.think ? 'think on' : undefined;
  const context = `context ${formatInt(s.contextUsed)}${s.contextSize !== undefined ? `/${formatInt(s.contextSize)}` : ''}`;
  const ctx = `ctx ${compactInt(s.contextUsed)}${s.contextSize !== undefined ? `/${compactInt(s.contextSize)}` : ''}`;
  const saving = s.savingTo ? `saving to ${s.savingTo}` : undefined;
  const forms = [
    [s.model, s.device, context, speed, ttft, think, saving],
    [s.model, s.device, context, speed, ttft, think],
    [s.model, context, speed, ttft, think],
    [s.model, ctx, speed, shortTtft, think],
    [ctx, speed, shortTtft, think],
  ].map((parts) => parts.filter(Boolean).join(' · '));
  const fits = forms.find((f) => [...f].length <= width);
  return fits ?? [...forms.at(-1)!].slice(0, Math.max(0, width)).join('');
}

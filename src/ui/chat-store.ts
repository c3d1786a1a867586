// The Ink chat's state, as a ChatView: the controller writes into it, the React tree reads
// snapshots (useSyncExternalStore). What is final goes to <Static> (printed once, then it scrolls
// like any terminal output); only the live turn, the input and the status line are redrawn, and
// they are kept shorter than the terminal (Ink clears the whole screen when its live part is not).
//
// A streamed answer is committed row by row: rows wrapped the way Ink wraps text (wrap-ansi, hard,
// untrimmed) are final once a later row exists, so at most one row stays live.
import wrapAnsi from 'wrap-ansi';
import { emptyEditor, type EditorState } from './editor.js';
import type { ChatView, Entry, Status } from './transcript.js';

export type StaticItem = { key: string; entry: Entry } | { key: string; row: string };

export interface Snapshot {
  /** Bumped by refresh: a new <Static> prints the items afresh on a cleared screen. */
  epoch: number;
  items: readonly StaticItem[];
  phase?: string;
  phaseSince: number;
  /** Live rows, already wrapped to `width`. */
  thinkingRows: readonly string[];
  answerRows: readonly string[];
  editor: EditorState;
  busy: boolean;
  status: Status;
  width: number;
  height: number;
}

/** Rows of `text` at `width` columns, as Ink's <Text wrap="wrap"> breaks them. */
export const wrapRows = (text: string, width: number): string[] => wrapAnsi(text, Math.max(1, width), { hard: true, trim: false }).split('\n');

/**
 * Columns of live rows: a few short of the terminal. A terminal may draw a character wider than
 * its Unicode width says (combining marks, emoji, ambiguous-width symbols: model output has them
 * all); a full-width row would then wrap, and Ink, erasing the lines it counted, would leave copies
 * of the live rows behind.
 */
export const liveWidth = (width: number) => Math.max(1, width - Math.max(2, Math.min(8, Math.floor(width / 8))));

/** Rows of live thinking shown while it streams (the rest scrolls away until Ctrl+T shows it all). */
const THINKING_WINDOW = 8;
const THINKING_PREFIX = '┊ ';

export class ChatStore implements ChatView {
  private snap: Snapshot;
  private listeners = new Set<() => void>();
  private nextKey = 0;
  private thinkingText = '';
  /** The answer's text not yet committed (the current line's unfinished rows). */
  private answerLive = '';
  private flushTimer?: NodeJS.Timeout;
  /** Called with the text a withdrawn message leaves in the input box. */
  onRestoreInput?: (text: string) => void;
  /** Called before a refresh re-prints everything (the glue clears the screen). */
  onRefresh?: () => void;

  constructor(status: Status, width: number, height: number) {
    this.snap = { epoch: 0, items: [], phaseSince: 0, thinkingRows: [], answerRows: [], editor: emptyEditor(), busy: false, status, width, height };
  }

  subscribe = (fn: () => void): (() => void) => {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  };

  getSnapshot = (): Snapshot => this.snap;

  private set(patch: Partial<Snapshot>): void {
    this.snap = { ...this.snap, ...patch };
    for (const fn of this.listeners) fn();
  }

  private push(items: StaticItem[]): void {
    if (items.length) this.set({ items: [...this.snap.items, ...items] });
  }

  private key(): string {
    return `k${this.nextKey++}`;
  }

  setEditor(editor: EditorState): void {
    this.set({ editor });
  }

  setBusy(busy: boolean): void {
    this.set({ busy });
  }

  resize(width: number, height: number): void {
    this.set({ width, height });
    this.schedule(0);
  }

  entry(e: Entry): void {
    this.push([{ key: this.key(), entry: e }]);
  }

  phase(text: string | undefined): void {
    if (text === this.snap.phase) return;
    // Steps of one phase ("layer 3/27", "layer 4/27") keep its clock.
    const same = text && this.snap.phase && text.split(' · ')[0] === this.snap.phase.split(' · ')[0];
    this.set({ phase: text, phaseSince: same ? this.snap.phaseSince : performance.now() });
  }

  thinking(delta: string): void {
    this.thinkingText += delta;
    this.schedule();
  }

  answer(delta: string): void {
    this.answerLive += delta;
    this.schedule();
  }

  answerStarted(thinking: Entry | undefined): void {
    this.thinkingText = '';
    this.set({ thinkingRows: [] });
    if (thinking) this.entry(thinking);
  }

  turnEnded(): void {
    this.flush();
    const rest = this.answerLive;
    this.answerLive = '';
    this.thinkingText = '';
    this.set({ answerRows: [], thinkingRows: [], phase: undefined });
    if (rest) this.push([{ key: this.key(), row: rest }]);
  }

  status(s: Status): void {
    this.set({ status: s });
  }

  refresh(entries: readonly Entry[]): void {
    this.onRefresh?.();
    this.set({ epoch: this.snap.epoch + 1, items: entries.map((entry) => ({ key: this.key(), entry })) });
  }

  restoreInput(text: string): void {
    this.onRestoreInput?.(text);
  }

  /** Batches streamed text: rows are wrapped and committed at most every `ms` (Ink draws at 30 fps). */
  private schedule(ms = 33): void {
    if (this.flushTimer) return;
    this.flushTimer = setTimeout(() => this.flush(), ms);
  }

  private flush(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    const width = liveWidth(this.snap.width);
    const committed: StaticItem[] = [];
    // Whole lines are final; of the last line, every row but the last is final too.
    const lines = this.answerLive.split('\n');
    const last = lines.pop() ?? '';
    for (const line of lines) committed.push({ key: this.key(), row: line });
    const rows = wrapRows(last, width);
    const live = rows.pop() ?? '';
    for (const row of rows) committed.push({ key: this.key(), row });
    this.answerLive = live;
    const thinkingRows = this.thinkingText ? thinkingTail(this.thinkingText, width - THINKING_PREFIX.length, THINKING_WINDOW).map((r) => THINKING_PREFIX + r) : [];
    this.snap = { ...this.snap, items: committed.length ? [...this.snap.items, ...committed] : this.snap.items, answerRows: live ? [live] : [], thinkingRows };
    for (const fn of this.listeners) fn();
  }
}

/** The last `n` rows of `text` wrapped to `width` (only its tail is wrapped: thinking can be long). */
function thinkingTail(text: string, width: number, n: number): string[] {
  const lines = text.split('\n');
  const tail: string[] = [];
  for (let i = lines.length - 1; i >= 0 && tail.length < n; i--) tail.unshift(...wrapRows(lines[i], width));
  return tail.slice(-n);
}

// Raw terminal input (stdin in raw mode) → key events for the chat's editor. Hand-written rather
// than Ink's useInput because a chat needs what it folds together: bracketed paste (a pasted block
// keeps its newlines and never sends), Enter (CR) apart from Ctrl+J (LF, a newline), Alt+Enter,
// and Ctrl+C / Ctrl+D as keys. Sequences split across chunks are held until complete.

export type Key =
  | { name: 'text'; text: string }
  | { name: 'paste'; text: string }
  | {
      name:
        | 'enter' | 'newline' | 'backspace' | 'delete' | 'up' | 'down' | 'left' | 'right' | 'home' | 'end'
        | 'wordLeft' | 'wordRight' | 'deleteWordLeft' | 'killToEnd' | 'killToStart' | 'interrupt' | 'eof'
        | 'redraw' | 'toggleThinking' | 'tab' | 'escape' | 'pageUp' | 'pageDown';
    };

const PASTE_START = '\x1b[200~';
const PASTE_END = '\x1b[201~';

const CONTROL: Record<string, Key['name']> = {
  '\r': 'enter', '\n': 'newline', '\x7f': 'backspace', '\b': 'backspace', '\t': 'tab',
  '\x01': 'home', '\x05': 'end', '\x02': 'left', '\x06': 'right', '\x10': 'up', '\x0e': 'down',
  '\x03': 'interrupt', '\x04': 'eof', '\x0b': 'killToEnd', '\x15': 'killToStart', '\x17': 'deleteWordLeft',
  '\x0c': 'redraw', '\x14': 'toggleThinking',
};

const ESCAPES: Record<string, Key['name']> = {
  '\x1b[A': 'up', '\x1b[B': 'down', '\x1b[C': 'right', '\x1b[D': 'left',
  '\x1bOA': 'up', '\x1bOB': 'down', '\x1bOC': 'right', '\x1bOD': 'left',
  '\x1b[H': 'home', '\x1b[F': 'end', '\x1bOH': 'home', '\x1bOF': 'end',
  '\x1b[1~': 'home', '\x1b[4~': 'end', '\x1b[7~': 'home', '\x1b[8~': 'end',
  '\x1b[3~': 'delete', '\x1b[5~': 'pageUp', '\x1b[6~': 'pageDown',
  '\x1b[1;5D': 'wordLeft', '\x1b[1;5C': 'wordRight', '\x1b[1;3D': 'wordLeft', '\x1b[1;3C': 'wordRight',
  '\x1bb': 'wordLeft', '\x1bf': 'wordRight', '\x1b\x7f': 'deleteWordLeft',
  '\x1b\r': 'newline', '\x1b\n': 'newline', '\x1b[13;2u': 'newline', '\x1b[13;5u': 'newline',
};

export class KeyParser {
  private pending = '';
  private paste?: string;

  /** Key events of a chunk of input; an incomplete escape sequence waits for the next chunk. */
  push(chunk: string): Key[] {
    const keys: Key[] = [];
    let s = this.pending + chunk;
    this.pending = '';
    while (s.length > 0) {
      if (this.paste !== undefined) {
        const end = s.indexOf(PASTE_END);
        if (end < 0) {
          // Hold a possible start of the end marker back.
          const keepFrom = partialSuffix(s, PASTE_END);
          this.paste += s.slice(0, keepFrom);
          this.pending = s.slice(keepFrom);
          return keys;
        }
        this.paste += s.slice(0, end);
        keys.push({ name: 'paste', text: normaliseNewlines(this.paste) });
        this.paste = undefined;
        s = s.slice(end + PASTE_END.length);
        continue;
      }
      if (s.startsWith(PASTE_START)) {
        this.paste = '';
        s = s.slice(PASTE_START.length);
        continue;
      }
      if (s[0] === '\x1b') {
        const seq = escapeAt(s);
        if (seq === undefined) {
          this.pending = s;
          return keys;
        }
        const name = ESCAPES[seq];
        if (name) keys.push({ name } as Key);
        else if (seq === '\x1b') keys.push({ name: 'escape' });
        s = s.slice(seq.length);
        continue;
      }
      const control = CONTROL[s[0]];
      if (control) {
        keys.push({ name: control } as Key);
        s = s.slice(1);
        continue;
      }
      // A run of printable text. Pasted blocks come bracketed (every common terminal, tmux and
      // screen do it once asked, as the chat does): outside a paste a CR is always Enter, so keys
      // sent together ("/think on", Enter, "Why?", Enter) stay two inputs.
      const m = /^[^\x00-\x1f\x7f]+/.exec(s);
      if (!m) {
        s = s.slice(1); // another control character: ignored
        continue;
      }
      keys.push({ name: 'text', text: m[0] });
      s = s.slice(m[0].length);
    }
    return keys;
  }
}

/** The escape sequence at the start of `s`, or undefined when `s` ends before it does. */
function escapeAt(s: string): string | undefined {
  if (s.length === 1) return undefined;
  const c = s[1];
  if (c === '[') {
    const m = /^\x1b\[[\x30-\x3f]*[\x20-\x2f]*[\x40-\x7e]/.exec(s);
    if (m) return m[0];
    return /^\x1b\[[\x20-\x3f]*$/.test(s) ? undefined : s.slice(0, 2);
  }
  if (c === 'O') return s.length < 3 ? undefined : s.slice(0, 3);
  // Alt+key, or a lone Escape followed by more input.
  return s.slice(0, 2);
}

function partialSuffix(s: string, marker: string): number {
  for (let n = Math.min(marker.length - 1, s.length); n > 0; n--) {
    if (marker.startsWith(s.slice(s.length - n))) return s.length - n;
  }
  return s.length;
}

const normaliseNewlines = (t: string) => t.replace(/\r\n?/g, '\n');

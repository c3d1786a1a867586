// `ovis chat` on a terminal: Ink draws (src/ui), this file does the I/O: the terminal in raw mode
// with bracketed paste, keys to the editor and the controller, resizes, signals, leaving cleanly.
import { PassThrough } from 'node:stream';
import { render } from 'ink';
import type { ChatSession } from '../session/chat-session.js';
import { ChatApp } from '../ui/chat-app.js';
import { ChatStore } from '../ui/chat-store.js';
import { edit, emptyEditor, InputHistory } from '../ui/editor.js';
import { KeyParser, type Key } from '../ui/keys.js';
import { ChatController } from './chat-controller.js';
import { appendHistory, readHistory } from './chat-history-file.js';

const BRACKETED_PASTE_ON = '\x1b[?2004h';
const BRACKETED_PASTE_OFF = '\x1b[?2004l';
const CLEAR_SCREEN = '\x1b[2J\x1b[3J\x1b[H';

export interface InkChatOptions {
  modelName: string;
  color: boolean;
  /** A conversation to continue (--load), and a file to keep it in (--save). */
  load?: string;
  save?: string;
  /** Diagnostics become lines in the chat while it owns the screen. */
  log?: { sink?: (text: string, tone: 'info' | 'warn' | 'error' | 'dim') => void };
}

export function runInkChat(session: ChatSession, opts: InkChatOptions): Promise<void> {
  const stdin = process.stdin;
  const stdout = process.stdout;
  return new Promise<void>((resolve) => {
    let left = false;
    const leave = async () => {
      if (left) return;
      left = true;
      stdin.off('data', onData);
      process.off('SIGINT', onSigint);
      process.off('SIGTERM', leaveNow);
      process.off('SIGHUP', leaveNow);
      stdout.off('resize', onResize);
      await controller.leave();
      if (opts.log) opts.log.sink = undefined;
      instance.clear();
      instance.unmount();
      stdout.write(BRACKETED_PASTE_OFF);
      if (stdin.isTTY) stdin.setRawMode(false);
      stdin.pause();
      resolve();
    };
    const leaveNow = () => void leave();
    const store = new ChatStore({ model: opts.modelName, device: '', contextUsed: 0, contextSize: 0, think: false }, stdout.columns || 80, stdout.rows || 24);
    const controller = new ChatController(session, store, { plain: false, modelName: opts.modelName, onExit: leaveNow });
    if (opts.log) opts.log.sink = (text, tone) => controller.notice(text, tone);
    const history = new InputHistory(readHistory());
    store.onRestoreInput = (text) => store.setEditor({ text, cursor: text.length });
    store.onRefresh = () => stdout.write(CLEAR_SCREEN);

    const submit = (text: string) => {
      store.setBusy(true);
      void controller.submit(text).finally(() => store.setBusy(controller.state !== 'idle'));
    };

    const onKey = (k: Key) => {
      const editor = store.getSnapshot().editor;
      switch (k.name) {
        case 'interrupt':
          // Stop the answer; else clear what is typed; else (an empty input) leave.
          if (controller.interrupt()) return;
          if (editor.text !== '') return store.setEditor(emptyEditor());
          return leaveNow();
        case 'eof':
          if (editor.text === '') return leaveNow();
          break;
        case 'enter': {
          if (!editor.text.trim()) return;
          history.add(editor.text);
          appendHistory(editor.text);
          store.setEditor(emptyEditor());
          return submit(editor.text);
        }
        case 'toggleThinking':
          return controller.toggleThinking();
        case 'redraw':
          return controller.redraw();
        default:
          break;
      }
      const next = edit(editor, k.name === 'eof' ? { name: 'delete' } : k, history);
      if (next) store.setEditor(next);
    };

    const parser = new KeyParser();
    const onData = (chunk: string) => {
      for (const k of parser.push(chunk)) onKey(k);
    };
    // A SIGINT from outside (kill, or a terminal not in raw mode) acts as Ctrl+C.
    const onSigint = () => onKey({ name: 'interrupt' });
    const onResize = () => store.resize(stdout.columns || 80, stdout.rows || 24);

    if (stdin.isTTY) stdin.setRawMode(true);
    stdin.setEncoding('utf8');
    stdin.on('data', onData);
    stdin.resume();
    process.on('SIGINT', onSigint);
    process.on('SIGTERM', leaveNow);
    process.on('SIGHUP', leaveNow);
    stdout.on('resize', onResize);
    stdout.write(BRACKETED_PASTE_ON);
    // Ink gets a stdin of its own: keys are read here, not by Ink's input hooks.
    const instance = render(<ChatApp store={store} theme={{ color: opts.color }} />, {
      stdout, stdin: new PassThrough() as unknown as NodeJS.ReadStream, exitOnCtrlC: false, patchConsole: false, maxFps: 30,
    });
    controller.start();
    void controller.begin(opts.load, opts.save);
  });
}

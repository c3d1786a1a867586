// Errors are values that carry their exit code; only the entry point (src/cli/main.ts) exits.
// The one table of exit codes, documented in man/ovis.1 (EXIT STATUS) and README.md.

export const ExitCode = {
  ok: 0,
  /** An unexpected bug in ovis itself. */
  internal: 1,
  /** Bad command line: unknown flag, bad value, conflicting options. */
  usage: 2,
  /** Missing, unreadable or invalid input (prompt, image, video). */
  input: 3,
  /** Missing, corrupt or mismatched model files. */
  model: 4,
  /** The engine process failed, crashed, or could not be started. */
  engine: 5,
  /** A download failed: the hub (or a mirror) unreachable, refusing, or sending bad data. */
  network: 6,
  /** An --endpoint refused the API key (401, 403). */
  auth: 7,
  /** An --endpoint is busy (429): try again later. */
  busy: 8,
  /** Interrupted by the user (SIGINT); 128 + 2 as shells do. */
  interrupted: 130,
  /** Asked to stop (SIGTERM): generation cancelled, output so far kept; 128 + 15. */
  terminated: 143,
} as const;

export type ExitCodeName = keyof typeof ExitCode;

export class OvisError extends Error {
  readonly exitCode: number;
  /** Stable machine-readable code for `--json` error events. */
  readonly code: string;
  constructor(code: string, exit: ExitCodeName, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.exitCode = ExitCode[exit];
    this.name = new.target.name;
  }
}

export class UsageError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('usage', 'usage', message, options);
  }
}

export class InputError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('input', 'input', message, options);
  }
}

/** Input refused for its size (an image or video frame over the decoded-pixel limit); the server's 413. */
export class TooLargeInputError extends InputError {}

export class ModelError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('model', 'model', message, options);
  }
}

export class NetworkError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('network', 'network', message, options);
  }
}

export class AuthError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('auth', 'auth', message, options);
  }
}

export class BusyError extends OvisError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('busy', 'busy', message, options);
  }
}

export class EngineError extends OvisError {
  constructor(message: string, code = 'engine', options?: { cause?: unknown }) {
    super(code, 'engine', message, options);
  }
}

export class InterruptedError extends OvisError {
  /** True when the output already says so (a `done` event with finish_reason "cancelled"). */
  readonly reported: boolean;
  constructor(message = 'interrupted', reported = false, signal: 'SIGINT' | 'SIGTERM' = 'SIGINT') {
    super(signal === 'SIGTERM' ? 'terminated' : 'interrupted', signal === 'SIGTERM' ? 'terminated' : 'interrupted', message);
    this.reported = reported;
  }
}

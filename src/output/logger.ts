// Diagnostics on stderr: never on stdout, which carries answers or requested JSON only.
export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  verbose(msg: string): void;
}

export function createLogger(opts: { verbose?: boolean; quiet?: boolean } = {}, stream: NodeJS.WritableStream = process.stderr): Logger {
  const tty = (stream as NodeJS.WriteStream).isTTY === true && !process.env.NO_COLOR;
  const paint = (code: string, s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
  return {
    info: (m) => { if (!opts.quiet) stream.write(`${m}\n`); },
    warn: (m) => stream.write(`${paint('33', 'warning:')} ${m}\n`),
    error: (m) => stream.write(`${paint('31', 'error:')} ${m}\n`),
    verbose: (m) => { if (opts.verbose) stream.write(`${paint('2', m)}\n`); },
  };
}

#!/usr/bin/env node
import { main } from '../dist/cli/main.js';

const code = await main(process.argv.slice(2));
process.exitCode = code;
// Interrupted (Ctrl-C 130, SIGTERM 143): everything is reported; a connection the interrupt left
// half-closed (a stalled server's socket) must not keep the process alive, so exit once stdout and
// stderr have flushed what was written.
if (code === 130 || code === 143) {
  process.stdout.write('', () => process.stderr.write('', () => process.exit(code)));
}

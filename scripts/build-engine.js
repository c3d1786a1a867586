#!/usr/bin/env node
// Builds the Rust engine (native/) in release mode; run by `npm install` (postinstall).
// A missing Rust toolchain gets a clear message instead of a stack trace.
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const cargo = process.env.CARGO ?? 'cargo';
const probe = spawnSync(cargo, ['--version'], { encoding: 'utf8' });
if (probe.error || probe.status !== 0) {
  process.stderr.write(
    'ovis: cannot build the engine: Rust\'s cargo was not found on PATH.\n' +
      '  Install Rust (https://rustup.rs: curl --proto \'=https\' -sSf https://sh.rustup.rs | sh),\n' +
      '  then run `npm run build:engine` in ' + root + '\n',
  );
  process.exit(1);
}
process.stderr.write(`ovis: building the engine with ${probe.stdout.trim()} (a few minutes the first time)\n`);
const build = spawnSync(cargo, ['build', '--release', '--manifest-path', join(root, 'native', 'Cargo.toml')], { stdio: ['ignore', 'inherit', 'inherit'] });
if (build.status !== 0) {
  process.stderr.write('ovis: the engine build failed (see the messages above)\n');
  process.exit(build.status ?? 1);
}

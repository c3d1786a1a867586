#!/usr/bin/env node
// `npm test` and its parts (`npm run test:engine`, `test:kernels`, `test:fakegpu`): runs the suites in
// order, stops at the first that fails, and ends with every test that did not run on this machine and
// why. cargo counts a test that returned early as passed and names an ignored one only in passing, so
// skipping tests append `SKIPPED <test>: <why>` to $OVIS_SKIP_LOG (native/tests/skip,
// native/tests/emu/prereq.py) and ignored tests are read from cargo's own output as it streams by.
//
//   node scripts/run-tests.js [ts|engine|kernels|fakegpu ...] [extra arguments for the one suite]
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const SUITES = {
  ts: ['npm', ['run', 'test:ts', '--']],
  engine: ['cargo', ['test', '--release', '--manifest-path', join(root, 'native', 'Cargo.toml')]],
  kernels: ['python3', [join(root, 'native', 'tests', 'emu', 'run.py')]],
  fakegpu: ['python3', [join(root, 'native', 'tests', 'emu', 'fakegpu', 'run.py'), '--quick']],
};
/** Python runs the emulation suites, which check their own tools (prereq.py); without Python itself
 * they are skipped the same way, or fail when OVIS_REQUIRE_TEST_TOOLS=1. */
const OPTIONAL = { python3: 'python3 was not found (install: apt-get install python3 python3-pip)' };

const argv = process.argv.slice(2);
const names = [];
while (argv.length && argv[0] in SUITES) names.push(argv.shift());
if (!names.length) names.push(...Object.keys(SUITES));
if (argv.length && names.length > 1) {
  process.stderr.write(`run-tests: extra arguments (${argv.join(' ')}) need exactly one suite: ${Object.keys(SUITES).join(', ')}\n`);
  process.exit(2);
}

const dir = mkdtempSync(join(tmpdir(), 'ovis-skips-'));
const skipLog = join(dir, 'skipped.txt');
/** `test:<suite>: N ignored: <reason>` lines, from cargo's stdout. */
const ignored = [];

/** Runs one suite with the skip log; resolves to its exit status. cargo's output (the engine suite)
 * is passed through as it comes, both streams through this process so that they stay in order, and
 * its stdout is scanned for `test <name> ... ignored[, <reason>]` lines; the other suites write
 * straight to the terminal (keeping their colours). */
function run(name) {
  const [cmd, args] = SUITES[name];
  const scan = name === 'engine';
  const env = { ...process.env, OVIS_SKIP_LOG: skipLog, ...(scan && process.stdout.isTTY ? { CARGO_TERM_COLOR: 'always' } : {}) };
  const child = spawn(cmd, [...args, ...argv], { cwd: root, env, stdio: ['inherit', scan ? 'pipe' : 'inherit', scan ? 'pipe' : 'inherit'] });
  child.stderr?.on('data', (chunk) => process.stderr.write(chunk));
  const reasons = new Map();
  let pending = '';
  child.stdout?.on('data', (chunk) => {
    process.stdout.write(chunk);
    const lines = (pending + chunk.toString('utf8')).split('\n');
    pending = lines.pop();
    for (const line of lines) {
      const m = /^test (\S+) \.\.\. ignored(?:, (.*))?$/.exec(line.trim());
      if (!m) continue;
      const why = m[2] ?? '(no reason given)';
      reasons.set(why, [...(reasons.get(why) ?? []), m[1]]);
    }
  });
  return new Promise((resolve) => {
    child.on('error', (e) => {
      if (e.code === 'ENOENT' && OPTIONAL[cmd] && process.env.OVIS_REQUIRE_TEST_TOOLS !== '1') {
        const line = `SKIPPED test:${name}: ${OPTIONAL[cmd]}`;
        process.stdout.write(`${line}\n`);
        appendFileSync(skipLog, `${line}\n`);
        resolve(0);
        return;
      }
      process.stderr.write(`run-tests: could not start ${cmd} for test:${name}: ${e.message}\n`);
      resolve(1);
    });
    child.on('close', (code, signal) => {
      for (const [why, tests] of reasons) ignored.push(`test:${name}: ${tests.length} ignored: ${why}`);
      resolve(signal ? 1 : code);
    });
  });
}

let status = 0;
for (const name of names) {
  status = await run(name);
  if (status !== 0) {
    process.stderr.write(`\nrun-tests: test:${name} failed (status ${status})\n`);
    break;
  }
}
let skipped = [];
try {
  skipped = readFileSync(skipLog, 'utf8').split('\n').filter(Boolean);
} catch {
  // no test skipped
}
rmSync(dir, { recursive: true, force: true });
const notRun = [...ignored, ...skipped];
const suites = names.map((n) => `test:${n}`).join(', ');
if (notRun.length) {
  const head = status ? 'before the failure' : `no failures in ${suites}`;
  process.stderr.write(`\nrun-tests: ${head}; not run on this machine (skips, not failures):\n${notRun.map((l) => `  ${l}\n`).join('')}`);
} else if (!status) {
  process.stderr.write(`\nrun-tests: ${suites} passed; nothing skipped\n`);
}
process.exit(status);

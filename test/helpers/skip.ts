// A test that cannot run on this machine says so, visibly: `SKIPPED <test>: <why>` on stdout and in
// $OVIS_SKIP_LOG, which `npm test` lists at the end (scripts/run-tests.js). Under CI or
// OVIS_REQUIRE_TEST_TOOLS=1 (.ci/run) a missing tool is a failure instead.
import { appendFileSync } from 'node:fs';

export function skipTest(name: string, why: string): void {
  if (process.env.CI || process.env.OVIS_REQUIRE_TEST_TOOLS === '1') throw new Error(`${name} cannot run: ${why}`);
  const line = `SKIPPED ${name}: ${why}`;
  process.stdout.write(`${line}\n`);
  if (process.env.OVIS_SKIP_LOG) appendFileSync(process.env.OVIS_SKIP_LOG, `${line}\n`);
}

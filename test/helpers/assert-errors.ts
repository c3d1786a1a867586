// Assertion that a call throws one of our error classes with a message matching a pattern.
import * as assert from 'uvu/assert';

export function rejectsWith(cls: new (...args: any[]) => Error, fn: () => unknown, pattern: RegExp): void {
  try {
    fn();
  } catch (err) {
    assert.instance(err, cls);
    assert.match((err as Error).message, pattern);
    return;
  }
  assert.unreachable(`expected a ${cls.name} matching ${pattern}`);
}

// A yes/no question on the terminal (stderr), answered on stdin: used before a download nobody
// asked for explicitly. Enter takes the default; Ctrl-C or Ctrl-D is an interruption.
import { createInterface } from 'node:readline';
import { InterruptedError } from '../errors.js';

/** Whether a person is there to answer: stdin and stderr are both terminals. */
export function canAsk(): boolean {
  return process.stdin.isTTY === true && process.stderr.isTTY === true;
}

export function confirm(question: string, defaultYes = true): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      rl.close();
      // readline resumed stdin: pause it again so that the process can exit (or Ink take it over)
      process.stdin.pause();
      fn();
    };
    rl.on('SIGINT', () => {
      process.stderr.write('\n');
      finish(() => reject(new InterruptedError('interrupted at the download question; nothing was downloaded')));
    });
    rl.on('close', () => finish(() => reject(new InterruptedError('no answer to the download question (end of input); nothing was downloaded'))));
    rl.question(`${question} ${defaultYes ? '[Y/n]' : '[y/N]'} `, (answer) => {
      const a = answer.trim().toLowerCase();
      finish(() => resolve(a === '' ? defaultYes : a === 'y' || a === 'yes'));
    });
  });
}

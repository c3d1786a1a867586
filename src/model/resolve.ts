// Resolves --model to a local model directory and checks the files every run needs.
import { existsSync, statSync } from 'node:fs';
import { resolve } from 'node:path';
import { ModelError, UsageError } from '../errors.js';

export function resolveModelDir(model: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const given = model ?? env.OVIS_MODEL;
  if (!given) {
    throw new UsageError('no model given: pass --model DIR (a local Ovis2.5 model directory) or set OVIS_MODEL');
  }
  const dir = resolve(given);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) {
    throw new ModelError(`model directory ${dir} does not exist: pass --model with the path of a downloaded Ovis2.5 model`);
  }
  for (const file of ['config.json', 'tokenizer.json']) {
    if (!existsSync(resolve(dir, file))) {
      throw new ModelError(`${resolve(dir, file)} is missing: ${dir} is not a complete Ovis2.5 model directory`);
    }
  }
  return dir;
}

// Finds the engine binary: $OVIS_ENGINE, else the one `npm install` built in native/target/release.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { EngineError } from '../errors.js';

/** The package root (two levels above dist/engine or src/engine). */
export const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function locateEngine(env: NodeJS.ProcessEnv = process.env): string {
  const explicit = env.OVIS_ENGINE;
  if (explicit) {
    if (!existsSync(explicit)) throw new EngineError(`OVIS_ENGINE=${explicit} does not exist: point it at an ovis-engine binary or unset it`);
    return explicit;
  }
  const built = join(packageRoot, 'native', 'target', 'release', process.platform === 'win32' ? 'ovis-engine.exe' : 'ovis-engine');
  if (!existsSync(built)) {
    throw new EngineError(`the engine is not built (${built} is missing): run \`npm run build:engine\` in ${packageRoot} (needs Rust: https://rustup.rs)`);
  }
  return built;
}

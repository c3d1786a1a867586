// Is the trainer installed? ms-swift: its Python package (for the version: 3.x and 4.x spell a flag
// differently) and its `swift` command on PATH. Upstream: a checkout with ovis/train/train.py, and
// torchrun on PATH. Each failure says how to install what is missing.
import { accessSync, constants, existsSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { run } from '../media/ffmpeg.js';
import { OvisError } from '../errors.js';

export class TrainerMissingError extends OvisError {
  constructor(message: string) {
    super('trainer-missing', 'input', message);
  }
}

/** The executable `name` on the PATH of `env`, or undefined. */
export function onPath(name: string, env: NodeJS.ProcessEnv = process.env): string | undefined {
  for (const dir of (env.PATH ?? '').split(delimiter)) {
    if (!dir) continue;
    const p = join(dir, name);
    try {
      accessSync(p, constants.X_OK);
      return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

/** ms-swift's version (e.g. "3.8.1") from the Python in OVIS_PYTHON, else python3; undefined when absent. */
export async function swiftVersion(env: NodeJS.ProcessEnv = process.env): Promise<string | undefined> {
  const python = env.OVIS_PYTHON || 'python3';
  try {
    // no spawn timeout: when the binary does not exist, Node never clears its timer and the process
    // would linger for the whole timeout
    const r = await run(python, ['-c', 'import swift; print(swift.__version__)'], { env });
    const v = r.stdout.toString('utf8').trim();
    return r.code === 0 && /^\d+\.\d+/.test(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

const SWIFT_INSTALL = "install it with `pip install 'ms-swift[all]' -U` (https://swift.readthedocs.io), in the Python environment of OVIS_PYTHON (default python3)";

/** The `swift` executable and ms-swift's major version, or TrainerMissingError. */
export async function requireSwift(env: NodeJS.ProcessEnv = process.env): Promise<{ path: string; version: string; major: number }> {
  const version = await swiftVersion(env);
  const path = onPath('swift', env);
  if (!version) {
    throw new TrainerMissingError(
      `ms-swift is not installed (${env.OVIS_PYTHON || 'python3'} cannot import swift${path ? `; the swift on PATH, ${path}, is something else` : ''}); ${SWIFT_INSTALL}`,
    );
  }
  if (!path) throw new TrainerMissingError(`ms-swift ${version} is installed but its \`swift\` command is not on PATH; add its bin folder to PATH, or ${SWIFT_INSTALL}`);
  return { path, version, major: Number(version.split('.')[0]) };
}

const UPSTREAM_INSTALL =
  'get it with `git clone https://github.com/AIDC-AI/Ovis && cd Ovis && pip install -e . && pip install deepspeed flash-attn --no-build-isolation`, then give --ovis-repo or set OVIS_REPO';

/** Checks the AIDC-AI/Ovis checkout and torchrun. */
export function requireUpstream(repo: string | undefined, env: NodeJS.ProcessEnv = process.env): void {
  if (!repo) throw new TrainerMissingError(`--engine upstream needs the AIDC-AI/Ovis training code; ${UPSTREAM_INSTALL}`);
  if (!existsSync(join(repo, 'ovis', 'train', 'train.py'))) {
    throw new TrainerMissingError(`${repo} is not an AIDC-AI/Ovis checkout (no ovis/train/train.py); ${UPSTREAM_INSTALL}`);
  }
  if (!onPath('torchrun', env)) throw new TrainerMissingError(`torchrun is not on PATH (it comes with PyTorch): install PyTorch, then ${UPSTREAM_INSTALL}`);
}

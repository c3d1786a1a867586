// What ovis sends the engine, byte for byte: OVIS_ENGINE points at a two-line shell script that
// copies its standard input to a file on the way to the real engine (which still does all the
// work and answers), and the file is read back with the protocol's own frame decoder. This is how a
// test sees the exact prompt ids and sampling parameters of a request.
import { chmodSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { locateEngine } from '../../src/engine/locate.js';
import { FrameDecoder, Kind, decodeGenerateBody, type GenerateRequest } from '../../src/protocol/index.js';
import { removeTempDir, tempDir } from './temp-dirs.js';

export interface SentGenerate {
  header: Omit<GenerateRequest, 'id'> & { id: number; n_ids: number };
  ids: number[];
}

/** One run at a time per recorder: runs in parallel would interleave their bytes in the file. */
export interface Recorder {
  /** Environment for runOvis: OVIS_ENGINE is the recording script. */
  env: Record<string, string>;
  /** The generate requests sent so far, in order (every run that used `env`). */
  generates(): SentGenerate[];
  dispose(): void;
}

export function recordingEngine(): Recorder {
  const dir = tempDir('ovis-wire-');
  const script = join(dir, 'engine.sh');
  const log = join(dir, 'to-engine.bin');
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  writeFileSync(script, `#!/bin/sh\ntee -a ${quote(log)} | exec ${quote(locateEngine())} "$@"\n`);
  chmodSync(script, 0o755);
  return {
    env: { OVIS_ENGINE: script },
    generates() {
      if (!existsSync(log)) return [];
      return new FrameDecoder().push(readFileSync(log)).filter((f) => f.kind === Kind.generate).map((f) => {
        const header = f.header as SentGenerate['header'];
        return { header, ids: Array.from(decodeGenerateBody(f.body, header.n_ids).ids) };
      });
    },
    dispose: () => removeTempDir(dir),
  };
}

/** Runs `fn` with a recorder and disposes of it afterwards. */
export async function withRecorder<T>(fn: (rec: Recorder) => Promise<T>): Promise<T> {
  const rec = recordingEngine();
  try {
    return await fn(rec);
  } finally {
    rec.dispose();
  }
}

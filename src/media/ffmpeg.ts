// Finding and running ffmpeg, and reading a video's frame rate and duration from `ffmpeg -i`
// (ffprobe is not shipped by ffmpeg-static, so we never rely on it).
// Lookup order (docs/architecture.md): the ffmpeg-static package's binary if it was downloaded,
// then $OVIS_FFMPEG, then `ffmpeg` on PATH; an explicit path overrides all three.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { InputError } from '../errors.js';

export interface FindFfmpegOptions {
  /** Use exactly this binary (and fail if it does not run). */
  ffmpegPath?: string;
  /** Path of the ffmpeg-static binary; undefined = resolve the package, null = pretend it is absent. */
  staticPath?: string | null;
  /** Environment for OVIS_FFMPEG and PATH lookup (default process.env). */
  env?: NodeJS.ProcessEnv;
}

export interface Ffmpeg {
  path: string;
  /** Where it came from, for `ovis info` and error reports. */
  source: 'option' | 'ffmpeg-static' | 'OVIS_FFMPEG' | 'PATH';
  /** First line of `ffmpeg -version`. */
  version: string;
  /** ffmpeg ≥ 5.1 spells frame-rate passthrough `-fps_mode`, older ones `-vsync`. */
  hasFpsMode: boolean;
  env: NodeJS.ProcessEnv;
}

export interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Run a binary; never rejects for a non-zero exit (callers read stderr), only for spawn errors. */
export function run(
  path: string,
  args: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; timeoutMs?: number; onStdout?: (chunk: Buffer) => void } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: opts.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
      signal: opts.signal,
      timeout: opts.timeoutMs,
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (c: Buffer) => (opts.onStdout ? opts.onStdout(c) : out.push(c)));
    // keep the tail only: ffmpeg can be chatty on long inputs (64 KiB is plenty for a diagnosis)
    child.stderr.on('data', (c: Buffer) => {
      err += c.toString('utf8');
      if (err.length > 65536) err = err.slice(-65536);
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: err }));
  });
}

function resolveStaticPath(): string | null {
  try {
    const req = createRequire(import.meta.url);
    const p = req('ffmpeg-static') as string | null;
    return typeof p === 'string' && existsSync(p) ? p : null;
  } catch {
    return null; // optional dependency not installed
  }
}

async function tryBinary(path: string, env: NodeJS.ProcessEnv): Promise<string | { version: string; hasFpsMode: boolean }> {
  try {
    const r = await run(path, ['-hide_banner', '-version'], { env, timeoutMs: 15_000 });
    const first = r.stdout.toString('utf8').split('\n')[0] ?? '';
    if (r.code !== 0 || !/^ffmpeg version/i.test(first)) return `does not run as ffmpeg (exit ${r.code})`;
    const m = /^ffmpeg version n?(\d+)\.(\d+)/i.exec(first);
    // unversioned (git) builds are recent
    const hasFpsMode = m ? Number(m[1]) > 5 || (Number(m[1]) === 5 && Number(m[2]) >= 1) : true;
    return { version: first.trim(), hasFpsMode };
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'not found' : code === 'EACCES' ? 'not executable' : String((err as Error).message);
  }
}

let defaultLookup: Promise<Ffmpeg> | undefined;

/** Locate a working ffmpeg, or throw an InputError that says what was tried and how to fix it. */
export function findFfmpeg(options: FindFfmpegOptions = {}): Promise<Ffmpeg> {
  const isDefault = options.ffmpegPath === undefined && options.staticPath === undefined && options.env === undefined;
  if (isDefault) {
    defaultLookup ??= lookup(options).catch((e: unknown) => {
      defaultLookup = undefined; // the user may install ffmpeg and retry in the same process (chat)
      throw e;
    });
    return defaultLookup;
  }
  return lookup(options);
}

async function lookup(options: FindFfmpegOptions): Promise<Ffmpeg> {
  const env = options.env ?? process.env;
  if (options.ffmpegPath !== undefined) {
    const r = await tryBinary(options.ffmpegPath, env);
    if (typeof r === 'string') throw new InputError(`ffmpeg at ${options.ffmpegPath} ${r}; videos need a working ffmpeg`);
    return { path: options.ffmpegPath, source: 'option', env, ...r };
  }
  const tried: string[] = [];
  const staticPath = options.staticPath === undefined ? resolveStaticPath() : options.staticPath;
  const candidates: [Ffmpeg['source'], string | undefined][] = [
    ['ffmpeg-static', staticPath ?? undefined],
    ['OVIS_FFMPEG', env.OVIS_FFMPEG || undefined],
    ['PATH', 'ffmpeg'],
  ];
  for (const [source, path] of candidates) {
    if (path === undefined) {
      tried.push(source === 'ffmpeg-static' ? 'the ffmpeg-static package (binary not downloaded)' : 'OVIS_FFMPEG (not set)');
      continue;
    }
    const r = await tryBinary(path, env);
    if (typeof r !== 'string') return { path, source, env, ...r };
    tried.push(
      source === 'ffmpeg-static' ? `the ffmpeg-static package (${path}: ${r})` :
      source === 'OVIS_FFMPEG' ? `OVIS_FFMPEG=${path} (${r})` :
      `ffmpeg on PATH (${r})`,
    );
  }
  throw new InputError(
    `videos need ffmpeg, and none works here. Tried: ${tried.join('; ')}. ` +
      'Install ffmpeg (e.g. `apt install ffmpeg` or `brew install ffmpeg`), set OVIS_FFMPEG to an ffmpeg binary, ' +
      'or reinstall ovis online so the ffmpeg-static package can download its binary.',
  );
}

export interface VideoInfo {
  /** frames per second as moviepy reports it (tbr first, then fps; 23.98 → 24000/1001) */
  fps: number | null;
  /** seconds, from the container's Duration line (centisecond precision) */
  duration: number | null;
  /** coded size of the first video stream (before any rotation), pixels */
  width: number | null;
  height: number | null;
}

/** Parse `ffmpeg -i FILE` stderr the way moviepy 1.x (the official demo's reader) does. */
export function parseFfmpegInfo(stderr: string): VideoInfo | null {
  const streamLine = stderr.split('\n').find((l) => /Stream #\d+:\d+.*: Video: /.test(l));
  if (streamLine === undefined) return null;
  const d = /Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)/.exec(stderr);
  const duration = d ? Number(d[1]) * 3600 + Number(d[2]) * 60 + Number(d[3]) : null;
  const rate = (unit: string): number | null => {
    const m = new RegExp(`[ ,](\\d+(?:\\.\\d+)?)(k?) ${unit}\\b`).exec(streamLine);
    return m ? Number(m[1]) * (m[2] === 'k' ? 1000 : 1) : null;
  };
  let fps = rate('tbr') ?? rate('fps');
  if (fps !== null) {
    // moviepy: ffmpeg prints 24000/1001 as 23.98; take the exact NTSC rate back
    const coef = 1000.0 / 1001.0; // moviepy's exact expression: x·(1000/1001), not x·1000/1001
    for (const x of [23, 24, 25, 30, 50]) {
      const ntsc = x * coef;
      if (fps !== x && Math.abs(fps - ntsc) < 0.01) fps = ntsc;
    }
    if (!(fps > 0)) fps = null;
  }
  const s = /[ ,](\d+)x(\d+)(?=[ ,\[]|$)/.exec(streamLine);
  return { fps, duration, width: s ? Number(s[1]) : null, height: s ? Number(s[2]) : null };
}

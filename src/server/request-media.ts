// The media of a request (`image_url` / `video_url` parts) → loaded patches: data: URLs always;
// file:// only with --allow-local-files; http(s) only with --allow-remote-media, within a size
// and a time limit. Bytes then go through the same decoding as `ovis ask` (src/cli/load-media.ts).
import { createHash } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadMedium, type LoadedMedium } from '../cli/load-media.js';
import { IMAGE_MIN_PIXELS } from '../media/smart-resize.js';
import type { Logger } from '../output/logger.js';
import { badRequest, HttpError, tooLarge } from './http-error.js';

export interface MediaPolicy {
  allowLocalFiles: boolean;
  allowRemoteMedia: boolean;
  /** Largest medium accepted, bytes (encoded, as sent or downloaded). */
  maxMediaBytes: number;
  /** Largest decoded image or video frame, pixels (the decompression-bomb guard). */
  maxInputPixels: number;
  /** Frames sampled from a video (as `ovis ask --frames`). */
  frames: number;
  /** How long a remote download may take, milliseconds. */
  remoteTimeoutMs: number;
}

export interface MediaRef {
  kind: 'image' | 'video';
  url: string;
  /** Where in the request it is, for error messages ("messages[0].content[1]"). */
  where: string;
}

export interface RequestMedium {
  loaded: LoadedMedium;
  /** Identifies the medium and its sizing, so a cached session can keep its block (SessionCache). */
  key: string;
}

export interface SizeKwargs {
  minPixels?: number;
  maxPixels?: number;
}

const mib = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

function checkSize(size: number, ref: MediaRef, policy: MediaPolicy): void {
  if (size > policy.maxMediaBytes) throw tooLarge(`${ref.where}: the ${ref.kind} is ${mib(size)}, over this server's limit of ${mib(policy.maxMediaBytes)} (--max-media-bytes)`, ref.where);
}

function fromDataUrl(ref: MediaRef, policy: MediaPolicy): Uint8Array {
  const comma = ref.url.indexOf(',');
  const head = comma < 0 ? '' : ref.url.slice(5, comma);
  if (comma < 0) throw badRequest(`${ref.where}: a data: URL needs a comma before its data`, ref.where);
  // Check the size before decoding: base64 carries 3 bytes in 4 characters.
  const base64 = /;base64$/i.test(head);
  const payload = ref.url.slice(comma + 1);
  checkSize(base64 ? Math.floor((payload.length * 3) / 4) : payload.length, ref, policy);
  return base64 ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload), 'utf8');
}

async function fromFile(ref: MediaRef, policy: MediaPolicy): Promise<Uint8Array> {
  if (!policy.allowLocalFiles) throw badRequest(`${ref.where}: file:// URLs are refused unless the server runs with --allow-local-files; send the ${ref.kind} as a data: URL`, ref.where);
  const path = fileURLToPath(ref.url);
  const info = await stat(path).catch(() => undefined);
  if (!info?.isFile()) throw badRequest(`${ref.where}: ${path} is not a readable file on the server`, ref.where);
  checkSize(info.size, ref, policy);
  return readFile(path);
}

async function fromRemote(ref: MediaRef, policy: MediaPolicy): Promise<Uint8Array> {
  if (!policy.allowRemoteMedia) throw badRequest(`${ref.where}: http(s) URLs are refused unless the server runs with --allow-remote-media; send the ${ref.kind} as a data: URL`, ref.where);
  let res: Response;
  const signal = AbortSignal.timeout(policy.remoteTimeoutMs);
  try {
    res = await fetch(ref.url, { signal, redirect: 'follow' });
  } catch (e) {
    throw badRequest(`${ref.where}: could not download ${ref.url} (${(e as Error).message})`, ref.where);
  }
  if (!res.ok || !res.body) throw badRequest(`${ref.where}: downloading ${ref.url} answered HTTP ${res.status}`, ref.where);
  const chunks: Uint8Array[] = [];
  let size = Number(res.headers.get('content-length') ?? 0);
  try {
    // A declared length over the limit is refused before reading; an undeclared one as it grows.
    checkSize(Number.isFinite(size) ? size : 0, ref, policy);
    size = 0;
    for await (const chunk of res.body as AsyncIterable<Uint8Array>) {
      size += chunk.length;
      checkSize(size, ref, policy);
      chunks.push(chunk);
    }
  } catch (e) {
    await res.body.cancel().catch(() => {});
    if (e instanceof HttpError) throw e;
    throw badRequest(`${ref.where}: downloading ${ref.url} failed (${signal.aborted ? `over ${policy.remoteTimeoutMs / 1000} s` : (e as Error).message})`, ref.where);
  }
  return Buffer.concat(chunks);
}

function fetchBytes(ref: MediaRef, policy: MediaPolicy): Promise<Uint8Array> {
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(ref.url)?.[1]?.toLowerCase();
  if (scheme === 'data') return Promise.resolve(fromDataUrl(ref, policy));
  if (scheme === 'file') return fromFile(ref, policy);
  if (scheme === 'http' || scheme === 'https') return fromRemote(ref, policy);
  return Promise.reject(badRequest(`${ref.where}: ${ref.kind} URLs must be data:, file: or http(s): URLs, got ${JSON.stringify(ref.url.slice(0, 40))}`, ref.where));
}

export async function loadRequestMedium(ref: MediaRef, size: SizeKwargs, policy: MediaPolicy, log: Logger): Promise<RequestMedium> {
  const bytes = await fetchBytes(ref, policy);
  const opts = { minPixels: size.minPixels ?? IMAGE_MIN_PIXELS, maxPixels: size.maxPixels, frames: policy.frames, maxInputPixels: policy.maxInputPixels };
  const key = createHash('sha256').update(`${ref.kind} ${opts.minPixels} ${opts.maxPixels} ${opts.frames}\n`).update(bytes).digest('hex');
  if (ref.kind === 'image') return { key, loaded: await loadMedium({ kind: 'image', source: ref.where, bytes }, opts, log) };
  // ffmpeg reads a video from a file: the bytes go to a private temporary one for the decode.
  const dir = await mkdtemp(join(tmpdir(), 'ovis-serve-'));
  try {
    const path = join(dir, 'video');
    await writeFile(path, bytes);
    return { key, loaded: await loadMedium({ kind: 'video', source: path }, opts, log) };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

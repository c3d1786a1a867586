// Where the Hugging Face and ModelScope caches are, which hub to talk to, with which token, and
// whether the network may be used at all: read from the same environment variables that the Python
// libraries (huggingface_hub, transformers, vLLM, modelscope) read, so that one cache serves them all.
import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';

export const DEFAULT_ENDPOINT = 'https://huggingface.co';

export interface HubEnv {
  /** The hub cache: $HF_HUB_CACHE, else $HUGGINGFACE_HUB_CACHE (older name), else $HF_HOME/hub,
   * else $XDG_CACHE_HOME/huggingface/hub, else ~/.cache/huggingface/hub. */
  cacheDir: string;
  /** ModelScope's cache root: $MODELSCOPE_CACHE, else ~/.cache/modelscope/hub. */
  modelscopeDir: string;
  /** The hub's base URL, no trailing slash: $HF_ENDPOINT (a mirror) or https://huggingface.co. */
  endpoint: string;
  /** $HF_TOKEN, else the token file that `huggingface-cli login` writes ($HF_TOKEN_PATH or $HF_HOME/token). */
  token?: string;
  /** $HF_HUB_OFFLINE (1/true/yes/on): never touch the network, use the cache as it is. */
  offline: boolean;
}

const truthy = (v: string | undefined) => /^(1|true|yes|on)$/i.test((v ?? '').trim());

export function hubEnv(env: NodeJS.ProcessEnv = process.env): HubEnv {
  const cacheHome = env.XDG_CACHE_HOME || join(homedir(), '.cache');
  const hfHome = env.HF_HOME || join(cacheHome, 'huggingface');
  const cacheDir = env.HF_HUB_CACHE || env.HUGGINGFACE_HUB_CACHE || join(hfHome, 'hub');
  return {
    cacheDir,
    modelscopeDir: env.MODELSCOPE_CACHE || join(homedir(), '.cache', 'modelscope', 'hub'),
    endpoint: (env.HF_ENDPOINT || DEFAULT_ENDPOINT).replace(/\/+$/, ''),
    token: env.HF_TOKEN?.trim() || readToken(env.HF_TOKEN_PATH || join(hfHome, 'token')),
    offline: truthy(env.HF_HUB_OFFLINE),
  };
}

function readToken(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

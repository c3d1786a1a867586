// Engine sessions shared by the server's requests. A conversation that continues sends its whole
// history again; the idle session whose cache shares the longest prefix of token ids with the new
// prompt (media blocks compared by content hash) is taken, and the engine prefills only the rest.
// Sessions beyond `max` are closed least recently used first, which frees their KV caches.
import type { EngineProcess } from '../engine/engine-process.js';
import { SessionCache } from '../session/session-cache.js';

interface Entry {
  name: string;
  cache: SessionCache;
  busy: boolean;
  usedAt: number;
  /** The engine generation whose cache this describes (a restarted engine holds nothing). */
  generation: number;
}

export interface Lease {
  session: string;
  /** Positions of the session's cache to keep for this prompt. */
  keep: number;
  /** After the request: what the session's cache now certainly holds. */
  finish(ids: Int32Array, mediaKeys: readonly string[], length: number): void;
  /** After a failed request: what it holds is unknown beyond `keep` (nothing if the engine died). */
  fail(engineAlive: boolean): void;
}

/** Positions shared with a cache that make it worth taking even if most of that cache is lost. */
const LONG_SHARED_PREFIX = 256;

/**
 * Taking a session truncates its cache to `keep`: worth it when this prompt continues most of that
 * conversation, or shares a long prefix (a long system prompt, the same image). A few shared tokens
 * (`<|im_start|>user\n`) are not worth the other conversation's history: a fresh session is taken.
 */
function worthReusing(keep: number, cached: number): boolean {
  return keep >= LONG_SHARED_PREFIX || keep * 2 >= cached;
}

export class SessionPool {
  private entries: Entry[] = [];
  private counter = 0;
  private clock = 0;

  constructor(private readonly max: number) {}

  /** A session for a prompt of `ids` whose media blocks are `mediaKeys`, marked busy until the lease ends. */
  take(engine: Pick<EngineProcess, 'closeSession'>, generation: number, ids: Int32Array, mediaKeys: readonly string[]): Lease {
    for (const e of this.entries) if (e.generation !== generation) e.cache.clear();
    let best: Entry | undefined;
    let bestKeep = 0;
    for (const e of this.entries) {
      if (e.busy) continue;
      const keep = e.cache.keepFor(ids, mediaKeys);
      if (keep > bestKeep && worthReusing(keep, e.cache.length)) [best, bestKeep] = [e, keep];
    }
    const entry = best ?? this.fresh(engine, generation);
    entry.busy = true;
    entry.generation = generation;
    const keep = best ? bestKeep : 0;
    const release = () => {
      entry.busy = false;
      entry.usedAt = ++this.clock;
    };
    return {
      session: entry.name,
      keep,
      finish: (all, keys, length) => {
        entry.cache.set(all, keys, length);
        release();
      },
      fail: (alive) => {
        if (alive) entry.cache.truncate(keep);
        else entry.cache.clear();
        release();
      },
    };
  }

  /** An idle session with an empty cache, or a new one (closing the least recently used beyond `max`). */
  private fresh(engine: Pick<EngineProcess, 'closeSession'>, generation: number): Entry {
    const idle = this.entries.filter((e) => !e.busy).sort((a, b) => a.usedAt - b.usedAt);
    const empty = idle.find((e) => e.cache.length === 0);
    if (empty) return empty;
    if (this.entries.length >= this.max && idle.length > 0) {
      const victim = idle[0];
      this.entries = this.entries.filter((e) => e !== victim);
      engine.closeSession(victim.name);
    }
    const entry: Entry = { name: `serve-${++this.counter}`, cache: new SessionCache(), busy: false, usedAt: 0, generation };
    this.entries.push(entry);
    return entry;
  }
}

// What the engine's KV cache of one session holds, so a new request keeps the longest prefix it
// shares with the new prompt (the protocol's `keep`) and prefills only the rest. Media blocks
// ([start, atoms…, end]) are kept whole or not at all, and only when they come from the same medium
// (compared by identity: the same loaded pixels), since their ids alone do not say which image.
import { IMAGE_END, IMAGE_START, VIDEO_END, VIDEO_START } from '../prompt/index.js';

export class SessionCache {
  private ids = new Int32Array(0);
  private media: readonly unknown[] = [];

  /** Positions the cache is known to hold. */
  get length(): number {
    return this.ids.length;
  }

  /**
   * Positions of the cache to keep for a prompt of `ids` whose media blocks are `media` (in order).
   * Always leaves at least one new id: the engine samples from the last prefilled position.
   */
  keepFor(ids: Int32Array, media: readonly unknown[]): number {
    const limit = Math.min(this.ids.length, ids.length - 1);
    let block = -1;
    let blockStart = -1;
    let i = 0;
    for (; i < limit; i++) {
      const id = ids[i];
      if (this.ids[i] !== id) break;
      if (id === IMAGE_START || id === VIDEO_START) {
        block += 1;
        if (this.media[block] === undefined || this.media[block] !== media[block]) break;
        blockStart = i;
      } else if (id === IMAGE_END || id === VIDEO_END) {
        blockStart = -1;
      }
    }
    // Never cut a medium in two: keep all of it or none.
    return blockStart >= 0 ? blockStart : i;
  }

  /** How many media blocks begin before position `keep` of `ids` (their pixels need not be sent). */
  static mediaBefore(ids: Int32Array, keep: number): number {
    let n = 0;
    for (let i = 0; i < keep; i++) if (ids[i] === IMAGE_START || ids[i] === VIDEO_START) n += 1;
    return n;
  }

  /** After a request: the cache holds the first `length` of `ids` (the prompt, then generated ids), with `media` in order. */
  set(ids: Int32Array, media: readonly unknown[], length = ids.length): void {
    this.ids = ids.slice(0, length);
    this.media = media.slice(0, SessionCache.mediaBefore(this.ids, this.ids.length));
  }

  /** The engine may hold more than `keep` positions now, but these are certain. */
  truncate(keep: number): void {
    this.set(this.ids, this.media, keep);
  }

  clear(): void {
    this.set(new Int32Array(0), []);
  }
}

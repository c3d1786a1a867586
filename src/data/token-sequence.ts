// A sample's ids with a trained/not-trained flag per id, and what a length limit does to it.
// Growable typed arrays: a dataset check builds one per sample, most of it visual atoms (hundreds to
// thousands per image), and boxed JS arrays of that size kept the garbage collector busy.
import { IMAGE_START, VIDEO_START, VISUAL_ATOM } from '../prompt/types.js';
import type { SampleTokens } from './types.js';

export class TokenSequence {
  private idBuf = new Int32Array(1024);
  private trainedBuf = new Uint8Array(1024);
  private n = 0;

  /** Appends `ids`; those with index in [trainedFrom, trainedTo) are trained. */
  push(ids: ArrayLike<number>, trainedFrom = 0, trainedTo = 0): void {
    this.reserve(this.n + ids.length);
    for (let i = 0; i < ids.length; i++) {
      this.idBuf[this.n + i] = ids[i];
      this.trainedBuf[this.n + i] = i >= trainedFrom && i < trainedTo ? 1 : 0;
    }
    this.n += ids.length;
  }

  pop(): void {
    if (this.n > 0) this.n--;
  }

  get length(): number {
    return this.n;
  }

  /** The ids (a view; valid until the next push). */
  get ids(): Int32Array {
    return this.idBuf.subarray(0, this.n);
  }

  /** Counts over the first `keep` ids (all by default); `total` is always the full length. */
  counts(keep = this.n): SampleTokens {
    let visual = 0;
    let trained = 0;
    for (let i = 0; i < keep; i++) {
      if (this.idBuf[i] < 0) visual++;
      trained += this.trainedBuf[i];
    }
    return { text: keep - visual, visual, trained, total: this.n };
  }

  /**
   * Upstream's cut (ConversationDataset.truncate_inputs): keep the first `max` ids; when the last kept
   * id is inside a medium (an atom or its start indicator), back off to just after the last text id,
   * dropping the partial medium. Returns how many ids are kept.
   */
  upstreamCut(max: number): number {
    if (this.n <= max) return this.n;
    let keep = max;
    const last = this.idBuf[keep - 1];
    if (last === VISUAL_ATOM || last === IMAGE_START || last === VIDEO_START) {
      while (keep > 0 && this.idBuf[keep - 1] < 0) keep--;
    }
    return keep;
  }

  /** Number of media (start indicators) at or after position `keep`: those a cut there drops. */
  mediaCut(keep: number): number {
    let n = 0;
    for (let i = keep; i < this.n; i++) if (this.idBuf[i] === IMAGE_START || this.idBuf[i] === VIDEO_START) n++;
    return n;
  }

  private reserve(size: number): void {
    if (size <= this.idBuf.length) return;
    let cap = this.idBuf.length;
    while (cap < size) cap *= 2;
    const ids = new Int32Array(cap);
    ids.set(this.idBuf.subarray(0, this.n));
    const trained = new Uint8Array(cap);
    trained.set(this.trainedBuf.subarray(0, this.n));
    this.idBuf = ids;
    this.trainedBuf = trained;
  }
}

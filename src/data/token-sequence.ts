// A sample's ids with a trained/not-trained flag per id, and what a length limit does to it.
import { IMAGE_START, VIDEO_START, VISUAL_ATOM } from '../prompt/types.js';
import type { SampleTokens } from './types.js';

export class TokenSequence {
  readonly ids: number[] = [];
  readonly trained: boolean[] = [];

  push(ids: ArrayLike<number>, trained: (i: number) => boolean): void {
    for (let i = 0; i < ids.length; i++) {
      this.ids.push(ids[i]);
      this.trained.push(trained(i));
    }
  }

  pop(): void {
    this.ids.pop();
    this.trained.pop();
  }

  get length(): number {
    return this.ids.length;
  }

  /** Counts over the first `keep` ids (all by default); `total` is always the full length. */
  counts(keep = this.ids.length): SampleTokens {
    let visual = 0;
    let trained = 0;
    for (let i = 0; i < keep; i++) {
      if (this.ids[i] < 0) visual++;
      if (this.trained[i]) trained++;
    }
    return { text: keep - visual, visual, trained, total: this.ids.length };
  }

  /**
   * Upstream's cut (ConversationDataset.truncate_inputs): keep the first `max` ids; when the last kept
   * id is inside a medium (an atom or its start indicator), back off to just after the last text id,
   * dropping the partial medium. Returns how many ids are kept.
   */
  upstreamCut(max: number): number {
    if (this.ids.length <= max) return this.ids.length;
    let keep = max;
    const last = this.ids[keep - 1];
    if (last === VISUAL_ATOM || last === IMAGE_START || last === VIDEO_START) {
      while (keep > 0 && this.ids[keep - 1] < 0) keep--;
    }
    return keep;
  }

  /** Number of media (start indicators) whose block is not entirely within the first `keep` ids. */
  mediaCut(keep: number): number {
    let n = 0;
    for (let i = keep; i < this.ids.length; i++) if (this.ids[i] === IMAGE_START || this.ids[i] === VIDEO_START) n++;
    // a block begun before `keep` and not finished: cannot happen after upstreamCut's back-off
    return n;
  }
}

// Before the engine encodes media on the CPU: the estimate (session/encode-estimate.ts) for the
// progress line, and, when the encode will be long, one line on stderr saying so with the
// --max-pixels that would make it short. Once per command: `ask --each` over 100 photos says it once.
import type { VisionCost } from '../session/encode-estimate.js';
import { EncodeClock, estimateEncodeMs, headShare, LONG_ENCODE_MS, longEncodeNote, patchCount, suggestMaxPixels } from '../session/encode-estimate.js';
import type { LoadedMedium } from './load-media.js';

export interface EncodeNoticeOptions {
  /** --min-pixels (the suggestion's budgets are resized with it, as the real run would be). */
  minPixels: number;
  /** Where the long-encode note goes (stderr, or the chat's notices). */
  note: (text: string) => void;
  /** --verbose's log: the estimate of every encode, long or not. */
  verbose?: (text: string) => void;
  now?: () => number;
}

export class EncodeNotice {
  private noted = false;

  constructor(private readonly cost: VisionCost | undefined, private readonly opts: EncodeNoticeOptions) {}

  /** The clock of the encode about to start (undefined without a cost model: a GPU or a server). */
  start(media: readonly LoadedMedium[]): EncodeClock | undefined {
    const c = this.cost;
    if (!c || media.length === 0) return undefined;
    const grids = media.map((m) => m.grid);
    const ms = estimateEncodeMs(c, grids);
    const patches = patchCount(grids);
    const what = mediaNoun(media);
    this.opts.verbose?.(`vision encode estimate: ${patches} patches, ${Math.round(ms)} ms (GEMM ${c.gemmGflops} GFLOP/s, attention ${c.attentionGflops} GFLOP/s measured at load)`);
    if (ms > LONG_ENCODE_MS && !this.noted) {
      this.noted = true;
      this.opts.note(longEncodeNote(what, patches, ms, suggestMaxPixels(c, media, this.opts.minPixels)));
    }
    return new EncodeClock(ms, c.layers, headShare(c, grids), this.opts.now);
  }
}

/** "the image", "3 images", "the video (8 frames)". */
function mediaNoun(media: readonly LoadedMedium[]): string {
  if (media[0].kind === 'video') return `the video (${media[0].grid[0]} frames)`;
  return media.length === 1 ? 'the image' : `${media.length} images`;
}

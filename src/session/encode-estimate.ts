// How long the engine's vision encode of some media will take on this machine, and which
// --max-pixels would make it short. The cost model (FLOPs, model-spec.md §4–5), for N patches in
// frames of len patches each (an image is one frame; a video has t):
//   ViT GEMMs  = L · 2·N·(4·D² + 2·D·I)          (q, k, v, out; fc1, fc2 in each of L layers)
//   attention  = L · Σ_frames 4·len²·D            (scores and P·V; full attention per frame)
//   head, VTE  = 2·(N/s²)·(s²·D)·(V−4) + 2·(N/s²)·V·H   (Linear to the visual vocabulary, then ·VTE)
// The GEMMs and head run at the engine's measured GEMM rate, attention at its attention rate
// (`model_loaded.info.vision_speed`, measured when the model loads: docs/protocol.md). The estimate
// is refined while the encode runs from the engine's per-layer timing (EncodeClock).
import { RESIZE_FACTOR, smartResize, type Size } from '../media/smart-resize.js';
import type { ModelInfo } from '../protocol/index.js';

/** An encode longer than this is "long": ovis says so, with a --max-pixels that makes it short. */
export const LONG_ENCODE_MS = 15_000;
/** The suggested --max-pixels brings the estimate under this. */
export const SHORT_ENCODE_MS = 10_000;

export interface VisionCost {
  layers: number;
  hidden: number;
  intermediate: number;
  /** patch side in pixels (16) and merge stride (2) */
  patch: number;
  stride: number;
  visualVocab: number;
  llmHidden: number;
  /** GFLOP/s measured by the engine at load. */
  gemmGflops: number;
  attentionGflops: number;
}

/** The cost model of a loaded model, or undefined when the engine measured no speed (CUDA, older engines). */
export function visionCostOf(info: ModelInfo): VisionCost | undefined {
  const s = info.vision_speed;
  const v = info.vit;
  if (!s || v.intermediate === undefined || !(s.gemm_gflops > 0) || !(s.attention_gflops > 0)) return undefined;
  return {
    layers: v.layers, hidden: v.hidden, intermediate: v.intermediate, patch: v.patch, stride: v.hidden_stride,
    visualVocab: info.visual_vocab, llmHidden: info.llm.hidden, gemmGflops: s.gemm_gflops, attentionGflops: s.attention_gflops,
  };
}

/** Grid [t, h, w] in patches. */
export type Grid = readonly [number, number, number] | readonly number[];

/** Milliseconds the whole encode (ViT layers, head, VTE) of `grids` is expected to take. */
export function estimateEncodeMs(c: VisionCost, grids: readonly Grid[]): number {
  let gemm = 0;
  let attention = 0;
  const { hidden: d, intermediate: i, layers: l } = c;
  for (const [t, h, w] of grids) {
    const n = t * h * w;
    const cells = n / (c.stride * c.stride);
    gemm += l * 2 * n * (4 * d * d + 2 * d * i) + 2 * cells * (c.stride * c.stride * d) * (c.visualVocab - 4) + 2 * cells * c.visualVocab * c.llmHidden;
    attention += l * t * 4 * (h * w) ** 2 * d;
  }
  return gemm / (c.gemmGflops * 1e6) + attention / (c.attentionGflops * 1e6);
}

/** Patches of grids, all frames. */
export const patchCount = (grids: readonly Grid[]) => grids.reduce((n, [t, h, w]) => n + t * h * w, 0);

export interface SizedMedium {
  kind: 'image' | 'video';
  /** decoded size (a video: one frame) */
  original: Size;
  grid: Grid;
}

export interface PixelSuggestion {
  /** --max-pixels value: (32·k)², so that the next sizes down stay on the resize grid. */
  maxPixels: number;
  /** the side of that square budget, in pixels */
  side: number;
  estimateMs: number;
}

/**
 * The largest --max-pixels of the form (32·k)² under which `media`, resized as the preprocessing
 * would (smartResize with that budget), encode in under `targetMs`; undefined when the media are
 * already that fast or even a 64² budget is not. (32 = patch 16 × merge stride 2: every resized
 * side is a multiple of it.)
 */
export function suggestMaxPixels(c: VisionCost, media: readonly SizedMedium[], minPixels: number, targetMs = SHORT_ENCODE_MS): PixelSuggestion | undefined {
  const factor = c.patch * c.stride || RESIZE_FACTOR;
  const gridFor = (m: SizedMedium, budget: number): Grid => {
    const r = smartResize(m.original.height, m.original.width, Math.min(minPixels, budget), budget, factor);
    return [m.grid[0], r.height / c.patch, r.width / c.patch];
  };
  const now = estimateEncodeMs(c, media.map((m) => m.grid));
  if (now <= targetMs) return undefined;
  const currentSide = Math.max(...media.map((m) => Math.sqrt(m.grid[1] * m.grid[2]) * c.patch));
  for (let k = Math.floor(currentSide / factor); k >= 2; k--) {
    const side = k * factor;
    let grids: Grid[];
    try {
      grids = media.map((m) => gridFor(m, side * side));
    } catch {
      // an aspect ratio too extreme for this budget: smaller ones fail too
      return undefined;
    }
    const ms = estimateEncodeMs(c, grids);
    if (ms <= targetMs) return { maxPixels: side * side, side, estimateMs: ms };
  }
  return undefined;
}

const seconds = (ms: number) => (ms < 10_000 ? `${(ms / 1000).toFixed(1)} s` : `${Math.round(ms / 1000)} s`);

/** "about 41 s", "about 2.5 min". */
export function aboutDuration(ms: number): string {
  return ms >= 120_000 ? `about ${(ms / 60_000).toFixed(1)} min` : `about ${seconds(ms)}`;
}

/**
 * The note before a long encode, e.g. "encoding the image (3,136 patches) will take about 41 s on
 * this CPU; --max-pixels 401408 (a 448·448 budget, fewer details) would take about 9.8 s".
 */
export function longEncodeNote(what: string, patches: number, estimateMs: number, suggestion: PixelSuggestion | undefined): string {
  const base = `encoding ${what} (${patches.toLocaleString('en-US')} patches) will take ${aboutDuration(estimateMs)} on this CPU`;
  if (!suggestion) return base;
  return `${base}; --max-pixels ${suggestion.maxPixels} (${suggestion.side}·${suggestion.side}, fewer details) would take ${aboutDuration(suggestion.estimateMs)}`;
}

/**
 * Percent done and time left of one encode, from the estimate and then from the engine's progress
 * events (layers done, engine-side elapsed ms): once a layer is done, the remaining layers are taken
 * to cost what the done ones did (they do: every layer has the same shapes), plus the head's share
 * of the estimate. `now` is injectable for tests.
 */
export class EncodeClock {
  private readonly start: number;
  private layersDone = 0;
  private engineMs = 0;
  /** local time of the last layer report */
  private at: number;
  private readonly headMs: number;

  constructor(readonly estimateMs: number, readonly layers: number, headShare = 0, private readonly now: () => number = () => performance.now()) {
    this.start = this.at = now();
    this.headMs = estimateMs * headShare;
  }

  /** The whole encode as projected when the first layer was done (for --verbose: the estimate's accuracy). */
  afterFirstLayerMs?: number;

  /** A `vision` progress event: `done` layers of `total` after `elapsedMs` in the engine (repeats are ignored). */
  layer(done: number, elapsedMs: number | undefined): void {
    if (done <= this.layersDone) return;
    this.layersDone = done;
    this.engineMs = elapsedMs ?? this.now() - this.start;
    this.at = this.now();
    if (this.afterFirstLayerMs === undefined) this.afterFirstLayerMs = this.engineMs + this.remainingMs();
  }

  /** Milliseconds left now (never below 0). */
  remainingMs(): number {
    const sinceReport = this.now() - this.at;
    if (this.layersDone === 0) return Math.max(0, this.estimateMs - (this.now() - this.start));
    const perLayer = this.engineMs / this.layersDone;
    // The head runs after the last layer, as much slower or faster than estimated as the layers were.
    const layersEstimate = this.estimateMs - this.headMs;
    const pace = layersEstimate > 0 ? (perLayer * this.layers) / layersEstimate : 1;
    const left = perLayer * (this.layers - this.layersDone) + this.headMs * pace;
    return Math.max(0, left - sinceReport);
  }

  /** 0–99 while running: elapsed / (elapsed + remaining). */
  percent(): number {
    const elapsed = this.now() - this.start;
    const left = this.remainingMs();
    return Math.min(99, Math.floor((100 * elapsed) / Math.max(1, elapsed + left)));
  }

  /** "37% · ~25 s left" */
  describe(): string {
    const left = this.remainingMs();
    if (left < 1000) return `${this.percent()}% · almost done`;
    return `${this.percent()}% · ~${left >= 120_000 ? `${(left / 60_000).toFixed(1)} min` : seconds(left)} left`;
  }
}

/** The head's and VTE's share of an encode estimate (they run after the last layer's progress event). */
export function headShare(c: VisionCost, grids: readonly Grid[]): number {
  const total = estimateEncodeMs(c, grids);
  const layersOnly = estimateEncodeMs({ ...c, visualVocab: 4, llmHidden: 0 }, grids);
  return total > 0 ? Math.max(0, (total - layersOnly) / total) : 0;
}

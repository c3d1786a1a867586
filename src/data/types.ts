// The two training-set formats `ovis data` reads and writes, and what a check reports.
//
// Upstream (AIDC-AI/Ovis, ovis/train/dataset/conversation_dataset.py): a JSON list of samples;
// media paths are relative to the dataset's `image_dir` (from a datainfo JSON:
// {name: {meta_file, image_dir, data_format, storage_type}}).
// ms-swift (docs/source_en/Customization/Custom-dataset.md): JSONL, one {messages, images?, videos?}
// per line; a message may carry `"loss": false` (not trained).

export type UpstreamFrom = 'system' | 'human' | 'gpt' | 'ignored_gpt';

export interface UpstreamTurn {
  from: UpstreamFrom;
  value: string;
}

export interface UpstreamSample {
  conversations: UpstreamTurn[];
  /** one path or a list, relative to image_dir */
  image?: string | string[];
  /** one video file, relative to image_dir */
  video?: string;
  /** the frames of one video, relative to image_dir */
  video_frames?: string[];
  [key: string]: unknown;
}

export type SwiftRole = 'system' | 'user' | 'assistant';

export interface SwiftMessage {
  role: SwiftRole;
  content: string;
  /** false: the message is not trained (ms-swift ≥ 3.x per-message loss switch) */
  loss?: boolean;
}

export interface SwiftSample {
  messages: SwiftMessage[];
  images?: string[];
  videos?: string[];
  [key: string]: unknown;
}

export type DatasetFormat = 'upstream' | 'swift';

/** Datainfo entry of an upstream dataset (ovis/train/dataset/*_datainfo.json). */
export interface UpstreamDataInfo {
  meta_file: string;
  image_dir: string;
  data_format: 'conversation' | 'caption';
  storage_type?: string;
}

export type Severity = 'error' | 'warning';

/** One problem found in one sample (or in the file, sample = null). */
export interface Problem {
  severity: Severity;
  /** stable code, e.g. "missing-media", "placeholder-count", "pad-token", "truncated" */
  code: string;
  /** 0-based index of the sample in the file (the line's index for JSONL), null for the file */
  sample: number | null;
  message: string;
  /** counts or paths that back the message up */
  detail?: Record<string, unknown>;
}

/** Token counts of one sample under a profile. */
export interface SampleTokens {
  /** text ids (everything that is not a visual slot) */
  text: number;
  /** visual atoms plus their start/end indicators */
  visual: number;
  /** ids with a label (trained on), after truncation */
  trained: number;
  /** text + visual before any truncation */
  total: number;
}

// The seam between the commands (ask, ask --each, chat) and what answers them: the engine on this
// machine (local-backend.ts) or an OpenAI-compatible server (src/remote/remote-backend.ts). The
// commands build the same request either way — the messages with media placeholders, the media
// loaded and checked, the user's flags — and stream the same token events back; only how the request
// reaches a model differs. src/cli/open-backend.ts picks one.
import type { LoadedMedium } from '../cli/load-media.js';
import type { MediaArg } from '../cli/media-args.js';
import type { SamplingFlags } from '../cli/sampling.js';
import type { GenerationDefaults } from '../model/generation-config.js';
import type { ChatMessage } from '../prompt/index.js';
import type { VisionCost } from './encode-estimate.js';
import type { TurnHooks, TurnResult } from './turn.js';

/** A medium ready to send: what was asked for (a path, or bytes), and its checked, resized patches. */
export interface Attached {
  arg: MediaArg;
  loaded: LoadedMedium;
}

export interface AnswerRequest {
  /** The conversation's name ('ask', 'each', 'chat'): a backend may keep its prefix between calls. */
  session: string;
  /** The whole conversation, system prompt first; media are {type:'image'|'video'} parts. */
  messages: ChatMessage[];
  /** The media of `messages`, in the order their parts appear. */
  media: readonly Attached[];
  think: boolean;
  thinkBudget?: number;
  maxNewTokens: number;
  /** The user's sampling flags; what is unset is the model's (or the server's) default. */
  sampling: SamplingFlags;
  topLogprobs: number;
  /** Log-probabilities are wanted (--json): a remote server is asked for them. */
  logprobs?: boolean;
}

export interface BackendInfo {
  /** 'cpu' or 'cuda' for the local engine, 'remote' for a server. */
  backend: string;
  /** The device ("cpu", the GPU's name) or the endpoint's URL. */
  device: string;
  /** The model's context in positions, when known. */
  maxPositions?: number;
  /** The local CPU engine's vision cost model (encode estimates); undefined elsewhere. */
  vision?: VisionCost;
}

export interface Backend {
  readonly info: BackendInfo;
  /** generation_config.json's sampling defaults; undefined where the server applies its own. */
  readonly defaults?: GenerationDefaults;
  /** Prompt positions of the last request (counted before it was sent; 0 when unknown). */
  readonly lastPromptTokens: number;
  answer(req: AnswerRequest, hooks: TurnHooks): Promise<TurnResult>;
  /** Positions of `session`'s conversation held between calls (a remote server: the last usage). */
  contextUsed(session: string): number;
  /** A second Ctrl-C: stop now, whatever is in flight. */
  kill(): void;
  close(): Promise<void>;
}

// An AnswerRequest as an OpenAI chat-completions request, with the fields vLLM takes for Ovis2.5:
// media as image_url / video_url data URLs, chat_template_kwargs.enable_thinking, the
// thinking_budget extension, mm_processor_kwargs for the pixel limits, and vLLM's sampling
// extensions (top_k, repetition_penalty). Only the flags the user gave are sent: the server applies
// the model's generation_config.json for the rest, as ovis does locally.
import { isGreedy } from '../cli/sampling.js';
import type { ChatMessage } from '../prompt/index.js';
import type { AnswerRequest, Attached } from '../session/backend.js';
import { mediaDataURL } from './media-url.js';

export interface RemoteMediaOptions {
  minPixels: number;
  maxPixels?: number;
}

type Part = { type: 'text'; text: string } | { type: 'image_url'; image_url: { url: string } } | { type: 'video_url'; video_url: { url: string } };
export interface WireMessage {
  role: ChatMessage['role'];
  content: string | Part[];
}

/** The messages with each media part replaced by its data URL (media in order of appearance). */
export function wireMessages(messages: readonly ChatMessage[], media: readonly Attached[]): WireMessage[] {
  let next = 0;
  return messages.map((m) => {
    if (typeof m.content === 'string') return { role: m.role, content: m.content };
    const parts = m.content.map((c): Part => {
      if (c.type === 'text') return c;
      const a = media[next++];
      if (!a) throw new Error(`message has more ${c.type} parts than media were given`);
      return c.type === 'image' ? { type: 'image_url', image_url: { url: mediaDataURL(a) } } : { type: 'video_url', video_url: { url: mediaDataURL(a) } };
    });
    return { role: m.role, content: parts };
  });
}

export function chatRequest(req: AnswerRequest, model: string, media: RemoteMediaOptions): Record<string, unknown> {
  const s = req.sampling;
  const body: Record<string, unknown> = {
    model,
    messages: wireMessages(req.messages, req.media),
    stream: true,
    stream_options: { include_usage: true },
    max_tokens: req.maxNewTokens,
    chat_template_kwargs: { enable_thinking: req.think },
  };
  if (req.thinkBudget !== undefined) body.thinking_budget = req.thinkBudget;
  if (s.temperature !== undefined) body.temperature = isGreedy(s.temperature) ? 0 : s.temperature;
  if (s.topP !== undefined) body.top_p = s.topP;
  if (s.topK !== undefined) body.top_k = s.topK === 0 ? -1 : s.topK; // vLLM: -1 is off
  // Greedy is the reference's greedy search, as locally: no repetition penalty unless asked for.
  if (s.repetitionPenalty !== undefined) body.repetition_penalty = s.repetitionPenalty;
  else if (s.temperature !== undefined && isGreedy(s.temperature)) body.repetition_penalty = 1;
  if (s.seed !== undefined) body.seed = s.seed;
  if (req.logprobs || req.topLogprobs > 0) {
    body.logprobs = true;
    if (req.topLogprobs > 0) body.top_logprobs = req.topLogprobs;
  }
  if (req.media.length > 0) body.mm_processor_kwargs = { min_pixels: media.minPixels, ...(media.maxPixels !== undefined ? { max_pixels: media.maxPixels } : {}) };
  return body;
}

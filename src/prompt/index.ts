// Prompt assembly in one object: model directory → tokenizer + chat template → text and input ids.
//
// Typical use from the CLI:
//   const pb = await PromptBuilder.load(modelDir);
//   const content = buildUserContent(promptText, mediaKinds);        // throws InputError on bad markers
//   const messages = [...history, { role: 'user', content }];
//   const { text, ids } = pb.encode(messages, { enableThinking, grids });  // kinds: mediaKindsOf(messages)
//   const dec = pb.streamDecoder(); for (id of generated) out.write(dec.push(id)); out.write(dec.flush());
import { InputError } from '../errors.js';
import { ChatTemplate } from './chat-template.js';
import { encodePrompt } from './encode.js';
import { StreamDecoder, type StreamDecoderOptions } from './stream-decoder.js';
import { OvisTokenizer } from './tokenizer.js';
import type { ChatMessage, GridTHW, MediaKind } from './types.js';
import { hasSentinel, mediaKindsOf, restorePlaceholders } from './user-content.js';

export interface PromptRenderOptions {
  /** Thinking mode, always explicit (false appends the empty think block). */
  enableThinking: boolean;
}

export interface PromptEncodeOptions extends PromptRenderOptions {
  /** One (t, h, w) patch grid per medium, in placeholder order. */
  grids: readonly GridTHW[];
  /** The kind of each medium, in placeholder order; default mediaKindsOf(messages). */
  kinds?: readonly MediaKind[];
}

export interface EncodedPrompt {
  /** The rendered prompt, with `<image>`/`<video>` placeholders. */
  text: string;
  /** Engine input ids: text ids ≥ 0 and visual slots (−300…−304). */
  ids: Int32Array;
}

export class PromptBuilder {
  constructor(
    readonly tokenizer: OvisTokenizer,
    readonly template: ChatTemplate,
  ) {}

  static async load(modelDir: string): Promise<PromptBuilder> {
    const [tokenizer, template] = await Promise.all([OvisTokenizer.load(modelDir), ChatTemplate.load(modelDir)]);
    return new PromptBuilder(tokenizer, template);
  }

  /** The prompt text for a conversation, ending with the assistant's generation prompt. */
  render(messages: readonly ChatMessage[], options: PromptRenderOptions): string {
    for (const m of messages) {
      // Marker sentinels are only legitimate in user turns built by buildUserContent; anywhere else
      // (say, model output fed back as history) they would turn into phantom placeholders.
      if (m.role !== 'user' && textsOf(m).some(hasSentinel)) {
        throw new InputError(
          `a ${m.role} message contains the Unicode noncharacter U+FDD0 or U+FDD1, which ovis reserves ` +
            'for media markers; remove it',
        );
      }
    }
    return restorePlaceholders(this.template.render(messages, { enableThinking: options.enableThinking }));
  }

  /** Renders and encodes a conversation; throws InputError when media and placeholders do not pair up. */
  encode(messages: readonly ChatMessage[], options: PromptEncodeOptions): EncodedPrompt {
    const text = this.render(messages, options);
    const kinds = options.kinds ?? mediaKindsOf(messages);
    return { text, ids: encodePrompt(this.tokenizer, text, options.grids, kinds) };
  }

  /** A fresh streaming detokenizer (special tokens skipped unless told otherwise). */
  streamDecoder(options?: StreamDecoderOptions): StreamDecoder {
    return new StreamDecoder(this.tokenizer, options);
  }
}

function textsOf(m: ChatMessage): string[] {
  if (typeof m.content === 'string') return [m.content];
  return m.content.flatMap((item) => (item.type === 'text' ? [item.text] : []));
}

export { ChatTemplate, type RenderOptions } from './chat-template.js';
export { encodePrompt, visualTokenCount, type PromptTokenizer } from './encode.js';
export { StreamDecoder, type StreamDecoderOptions, type StreamTokenizer } from './stream-decoder.js';
export { OvisTokenizer, type DecodeOptions, type SpecialTokenIds } from './tokenizer.js';
export * from './types.js';
export {
  buildUserContent,
  hasSentinel,
  IMAGE_SENTINEL,
  mediaKindsOf,
  restorePlaceholders,
  VIDEO_SENTINEL,
} from './user-content.js';

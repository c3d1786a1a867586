// Incremental detokenizer for streaming generated text.
//
// A token is a run of BYTES, not characters: one emoji or CJK character often spans two or three tokens.
// Decoding each token on its own would print U+FFFD for the halves. Instead the bytes of all pushed
// tokens go through one streaming UTF-8 decoder, which holds back an incomplete trailing sequence until
// the next token completes it (or proves it invalid). Invalid bytes still become U+FFFD exactly where
// the batch decode puts them (both follow the "maximal subpart" rule), so the concatenated output equals
// `tokenizer.decode(allIds, { skipSpecial })`.
import type { OvisTokenizer } from './tokenizer.js';

export interface StreamDecoderOptions {
  /** Drop special tokens (`<|im_end|>`…); default true. `<think>`/`</think>` are not special and stay. */
  skipSpecial?: boolean;
}

export type StreamTokenizer = Pick<OvisTokenizer, 'tokenBytes' | 'isSpecial'>;

export class StreamDecoder {
  private readonly tokenizer: StreamTokenizer;
  private readonly skipSpecial: boolean;
  // ignoreBOM: a generated U+FEFF at the very start is text like any other (the batch decode keeps it).
  private utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });

  constructor(tokenizer: StreamTokenizer, options: StreamDecoderOptions = {}) {
    this.tokenizer = tokenizer;
    this.skipSpecial = options.skipSpecial ?? true;
  }

  /** Feeds one id; returns the text it completes (often '', never a partial character). */
  push(id: number): string {
    if (this.skipSpecial && this.tokenizer.isSpecial(id)) return '';
    const bytes = this.tokenizer.tokenBytes(id);
    if (bytes === null || bytes.length === 0) return ''; // ids past the vocabulary decode to nothing
    return this.utf8.decode(bytes, { stream: true });
  }

  /** Feeds several ids; returns the text they complete. */
  pushAll(ids: Iterable<number>): string {
    let text = '';
    for (const id of ids) text += this.push(id);
    return text;
  }

  /** Ends the stream: returns what is held back (U+FFFD for a truncated character) and resets. */
  flush(): string {
    const rest = this.utf8.decode();
    this.utf8 = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
    return rest;
  }
}

// The model's text tokenizer (Qwen2 byte-level BPE, model-spec §3.1) on top of @huggingface/tokenizers.
//
// The library was checked against the Rust `tokenizers` crate (what the reference runs) on thousands of
// random strings mixing NFC-sensitive sequences, every kind of Unicode whitespace (U+0085, U+FEFF, U+3000…),
// contractions, digits, emoji and added tokens, and on random id sequences for decoding (with and without
// skipping special tokens, ids past the vocabulary included): ids and text were identical, so this file only
// wraps it; no BPE of our own.
import { join } from 'node:path';
import { Tokenizer } from '@huggingface/tokenizers';
import { ModelError } from '../errors.js';
import { readJson } from './model-files.js';

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

interface TokenizerJson {
  added_tokens?: AddedTokenJson[];
  model?: { vocab?: Record<string, number> };
  [key: string]: unknown;
}

interface TokenizerConfigJson {
  added_tokens_decoder?: Record<string, { content: string; special?: boolean }>;
  clean_up_tokenization_spaces?: boolean;
  [key: string]: unknown;
}

/** Ids of the control tokens the prompt and generation code need by name. */
export interface SpecialTokenIds {
  /** `<|endoftext|>`: pad, and the second eos; never allowed inside a prompt. */
  endOfText: number;
  /** `<|im_start|>` */
  imStart: number;
  /** `<|im_end|>`: the tokenizer's eos, ends every turn. */
  imEnd: number;
  /** `<think>` (not special: kept when special tokens are skipped) */
  thinkStart: number;
  /** `</think>` (not special) */
  thinkEnd: number;
}

export interface DecodeOptions {
  /** Drop tokens flagged special (`<|im_end|>`, `<|endoftext|>`…); `<think>`/`</think>` are not special. */
  skipSpecial?: boolean;
}

/** GPT-2's byte↔printable-character table used by byte-level BPE, as char → byte. */
function byteDecoderTable(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) bytes.push(b);
  for (let b = 0xa1; b <= 0xac; b++) bytes.push(b);
  for (let b = 0xae; b <= 0xff; b++) bytes.push(b);
  const chars = bytes.slice();
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + n);
      n++;
    }
  }
  const table = new Map<string, number>();
  bytes.forEach((b, i) => table.set(String.fromCodePoint(chars[i]), b));
  return table;
}

const BYTE_DECODER = byteDecoderTable();
const UTF8 = new TextEncoder();

export class OvisTokenizer {
  /** Number of ids the tokenizer knows (151 669 for Ovis2.5); larger ids are padding rows and decode to nothing. */
  readonly size: number;
  readonly specialIds: SpecialTokenIds;
  private readonly lib: Tokenizer;
  private readonly special: ReadonlySet<number>;
  private readonly cleanUpSpaces: boolean;
  private readonly bytesCache = new Map<number, Uint8Array | null>();

  constructor(tokenizerJson: TokenizerJson, config: TokenizerConfigJson = {}) {
    try {
      this.lib = new Tokenizer(tokenizerJson, config);
    } catch (err) {
      throw new ModelError(`tokenizer.json could not be loaded: ${(err as Error).message}`, { cause: err });
    }
    // "special" decides what skip_special_tokens drops; tokenizer_config.json's table can add flags.
    const special = new Set<number>();
    let maxId = -1;
    for (const t of tokenizerJson.added_tokens ?? []) {
      if (t.special) special.add(t.id);
      maxId = Math.max(maxId, t.id);
    }
    for (const [id, t] of Object.entries(config.added_tokens_decoder ?? {})) {
      if (t.special) special.add(Number(id));
      maxId = Math.max(maxId, Number(id));
    }
    for (const id of Object.values(tokenizerJson.model?.vocab ?? {})) if (id > maxId) maxId = id;
    this.size = maxId + 1;
    this.special = special;
    this.cleanUpSpaces = config.clean_up_tokenization_spaces ?? false;
    this.specialIds = {
      endOfText: this.requireId('<|endoftext|>'),
      imStart: this.requireId('<|im_start|>'),
      imEnd: this.requireId('<|im_end|>'),
      thinkStart: this.requireId('<think>'),
      thinkEnd: this.requireId('</think>'),
    };
  }

  /** Loads `tokenizer.json` (required) and `tokenizer_config.json` (optional) from a model directory. */
  static async load(modelDir: string): Promise<OvisTokenizer> {
    const json = await readJson<TokenizerJson>(join(modelDir, 'tokenizer.json'), true);
    const config = (await readJson<TokenizerConfigJson>(join(modelDir, 'tokenizer_config.json'), false)) ?? {};
    return new OvisTokenizer(json, config);
  }

  /**
   * Text → ids with no BOS/EOS added. Added tokens (`<|im_start|>`, `<think>`, `<|endoftext|>`…) typed in
   * the text are matched literally and become single ids, as the reference does (split_special_tokens=false).
   */
  encodeText(text: string): number[] {
    if (text === '') return [];
    return this.lib.encode(text, { add_special_tokens: false }).ids;
  }

  decode(ids: ArrayLike<number>, options: DecodeOptions = {}): string {
    return this.lib.decode(Array.from(ids), {
      skip_special_tokens: options.skipSpecial ?? false,
      clean_up_tokenization_spaces: this.cleanUpSpaces,
    });
  }

  /** Whether `skipSpecial` drops this id. */
  isSpecial(id: number): boolean {
    return this.special.has(id);
  }

  tokenToId(token: string): number | undefined {
    return this.lib.token_to_id(token);
  }

  idToToken(id: number): string | undefined {
    return this.lib.id_to_token(id);
  }

  /**
   * The raw bytes a token stands for (null for ids outside the vocabulary), as the Rust ByteLevel decoder
   * computes them: each char mapped back through the byte table, or, when some char is not in the table
   * (never for this vocabulary, but possible for added tokens), the token's own UTF-8 bytes.
   * Used by the streaming decoder, which must cut text only at character boundaries.
   */
  tokenBytes(id: number): Uint8Array | null {
    let cached = this.bytesCache.get(id);
    if (cached !== undefined) return cached;
    const token = id >= 0 && id < this.size ? this.lib.id_to_token(id) : undefined;
    if (token === undefined) {
      cached = null;
    } else {
      const out: number[] = [];
      let mapped = true;
      for (const ch of token) {
        const b = BYTE_DECODER.get(ch);
        if (b === undefined) {
          mapped = false;
          break;
        }
        out.push(b);
      }
      cached = mapped ? Uint8Array.from(out) : UTF8.encode(token);
    }
    this.bytesCache.set(id, cached);
    return cached;
  }

  private requireId(token: string): number {
    const id = this.lib.token_to_id(token);
    if (id === undefined) throw new ModelError(`tokenizer.json has no ${token} token; is this an Ovis2.5 model?`);
    return id;
  }
}

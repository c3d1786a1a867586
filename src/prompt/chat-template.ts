// Renders a conversation with the model's own Jinja chat template (model-spec §3.2), so that a system
// prompt, history and the thinking switch produce exactly the reference's text.
//
// @huggingface/jinja was checked against Python's jinja2 (what the reference uses) on 1,500 random
// conversations with this template. One divergence, fixed in python-strings.ts: its strip/lstrip/rstrip
// ignore their argument. One faithful oddity: Jinja2 scoping keeps a `set` inside a for loop from leaking
// out, so an assistant message whose content is a LIST renders as empty in the reference too. Callers
// should give assistant history as a string.
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { InputError, ModelError } from '../errors.js';
import { readJson, readOptionalText } from './model-files.js';
import { PY_STRIP_GLOBALS, rewriteStripCalls } from './python-strings.js';
import type { ChatMessage } from './types.js';

export interface RenderOptions {
  /**
   * Thinking mode. Always passed to the template explicitly: false appends the empty think block
   * `<think>\n\n</think>\n\n`; true leaves the model to open its own (an unset variable would also mean
   * "on" in this template, the vLLM default, but we never leave it unset).
   */
  enableThinking: boolean;
  /** Append `<|im_start|>assistant\n` (default true: we always prompt the model for the next turn). */
  addGenerationPrompt?: boolean;
}

interface TokenizerConfigJson {
  chat_template?: string | Array<{ name: string; template: string }>;
  [key: string]: unknown;
}

/** Special-token strings HF exposes to templates (unused by Ovis2.5's, passed for other templates). */
const TEMPLATE_TOKEN_KEYS = ['bos_token', 'eos_token', 'pad_token', 'unk_token'] as const;

export class ChatTemplate {
  readonly source: string;
  private readonly template: Template;
  private readonly globals: Record<string, string>;

  constructor(source: string, globals: Record<string, string> = {}) {
    this.source = source;
    this.globals = globals;
    try {
      this.template = new Template(source);
    } catch (err) {
      throw new ModelError(`the model's chat template does not parse: ${(err as Error).message}`, { cause: err });
    }
    rewriteStripCalls(this.template);
  }

  /**
   * Reads the template from `chat_template.json` (what the Ovis2.5 repos ship), falling back to
   * `chat_template.jinja` and then to `tokenizer_config.json`'s `chat_template`.
   */
  static async load(modelDir: string): Promise<ChatTemplate> {
    const config = (await readJson<TokenizerConfigJson>(join(modelDir, 'tokenizer_config.json'), false)) ?? {};
    const globals: Record<string, string> = {};
    for (const key of TEMPLATE_TOKEN_KEYS) {
      const value = config[key];
      if (typeof value === 'string') globals[key] = value;
    }
    const fromJson = await readJson<{ chat_template?: unknown }>(join(modelDir, 'chat_template.json'), false);
    if (typeof fromJson?.chat_template === 'string') return new ChatTemplate(fromJson.chat_template, globals);
    const jinja = await readOptionalText(join(modelDir, 'chat_template.jinja'));
    if (jinja !== undefined) return new ChatTemplate(jinja, globals);
    const fromConfig = config.chat_template;
    if (typeof fromConfig === 'string') return new ChatTemplate(fromConfig, globals);
    if (Array.isArray(fromConfig)) {
      const named = fromConfig.find((t) => t.name === 'default');
      if (named) return new ChatTemplate(named.template, globals);
    }
    throw new ModelError(
      `no chat template in ${modelDir} (looked for chat_template.json, chat_template.jinja and ` +
        `tokenizer_config.json's chat_template)`,
    );
  }

  render(messages: readonly ChatMessage[], options: RenderOptions): string {
    try {
      return this.template.render({
        ...this.globals,
        ...PY_STRIP_GLOBALS,
        messages,
        add_generation_prompt: options.addGenerationPrompt ?? true,
        enable_thinking: options.enableThinking,
      });
    } catch (err) {
      // The template's raise_exception covers unknown roles and content types: the caller's input.
      throw new InputError(`the chat template rejected the conversation: ${(err as Error).message}`, {
        cause: err,
      });
    }
  }
}

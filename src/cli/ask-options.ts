// The options of `ovis ask` and `ovis chat`: one definition for --help, parsing and checks.
import { Command, Option } from 'commander';
import { DEFAULT_MAX_INPUT_PIXELS } from '../media/decode-image.js';
import { deviceOption, floatOption, intOption, LORA_HELP, PRECISION_HELP, PRECISIONS, type Precision, WEIGHTS_HELP, weightsOption } from './options.js';

/** What `ask` and `chat` share: the model, thinking, sampling, media sizing, device. */
export interface GenerationOptions {
  model?: string;
  system?: string;
  think: boolean;
  thinkBudget?: number;
  maxNewTokens: number;
  temperature?: number;
  topP?: number;
  topK?: number;
  repetitionPenalty?: number;
  seed?: number;
  device: string;
  /** A LoRA adapter directory merged into the weights at load. */
  lora?: string;
  /** CPU arithmetic of the compute-bound products (undefined: the engine's default, f32). */
  precision?: Precision;
  /** bf16 | int8 | int4: how the decoder's weights are held (default $OVIS_WEIGHTS, else bf16). */
  weights?: string;
  minPixels: number;
  maxPixels?: number;
  frames: number;
  maxInputPixels: number;
  verbose: boolean;
  endpoint?: string;
  apiKey?: string;
  remoteModel?: string;
}

export interface AskOptions extends GenerationOptions {
  messages?: string;
  json: boolean;
  topLogprobs: number;
  attach: string[];
  each?: string;
  format?: 'json' | 'text';
  save?: string;
  continue?: string;
}

export interface ChatOptions extends GenerationOptions {
  load?: string;
  save?: string;
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function addGenerationOptions(cmd: Command): Command {
  return cmd
    .option('-m, --model <model>', 'a model directory, or ORG/NAME[@REVISION] from the Hugging Face or ModelScope cache (default: $OVIS_MODEL, else AIDC-AI/Ovis2.5-2B)')
    .option('-s, --system <text>', 'system prompt')
    .option('--think', 'let the model think first (ask: thinking goes to stderr)', false)
    .option('--no-think', 'answer directly (default)')
    .option('--think-budget <n>', 'think at most n tokens, then answer (implies --think); the 24 tokens ovis appends to close the thinking do not count against -n', intOption('--think-budget', 1, 40960))
    .option('-n, --max-new-tokens <n>', 'most tokens the model generates per answer, thinking included', intOption('--max-new-tokens', 1, 40960), 1024)
    .option('-t, --temperature <t>', "sampling temperature; 0 = greedy (default: the model's generation_config.json)", floatOption('--temperature', 0, 100))
    .option('--top-p <p>', 'nucleus sampling: keep the smallest set of tokens with this much probability', floatOption('--top-p', 0, 1, { minExclusive: true }))
    .option('--top-k <k>', 'keep the k most likely tokens; 0 = off', intOption('--top-k', 0, 1_000_000))
    .option('--repetition-penalty <r>', 'penalise tokens already generated; 1 = off (greedy default: 1)', floatOption('--repetition-penalty', 0.01, 100))
    .option('--seed <n>', 'random seed for reproducible sampling', intOption('--seed', 0, 2 ** 53 - 1))
    .option('--min-pixels <n>', 'smallest resized image area in pixels', intOption('--min-pixels', 1), 448 * 448)
    .option('--max-pixels <n>', 'largest resized image area (default 1792·1792; 896·896 per video frame)', intOption('--max-pixels', 1))
    .option('--frames <n>', 'frames sampled from a video', intOption('--frames', 1, 256), 8)
    .option('--max-input-pixels <n>', 'refuse images whose decoded size exceeds this many pixels', intOption('--max-input-pixels', 1), DEFAULT_MAX_INPUT_PIXELS)
    .addOption(new Option('--device <device>', 'where the engine runs: auto, cpu, cuda, cuda:N').argParser(deviceOption).default('auto'))
    .option('--lora <dir>', LORA_HELP)
    .addOption(new Option('--precision <p>', PRECISION_HELP).choices(PRECISIONS))
    .option('--weights <mode>', WEIGHTS_HELP, weightsOption)
    .option('-v, --verbose', 'show engine logs and timings on stderr', false)
    .option('--endpoint <url>', 'answer with an OpenAI-compatible server (ovis serve, vLLM) at URL, e.g. http://host:8000/v1, instead of the local engine')
    .option('--api-key <key>', 'with --endpoint: the API key sent as a Bearer token (default: $OVIS_API_KEY)')
    .option('--remote-model <name>', "with --endpoint: the server's model (default: its only model, or the --model name)");
}

export function addAskOptions(cmd: Command): Command {
  return addGenerationOptions(cmd)
    .option('--messages <file>', 'earlier turns as an OpenAI-style JSON array of {role, content} (media parts are files)')
    .option('--save <file>', 'write the conversation, with this answer, to FILE (the --messages format)')
    .option('--continue <file>', 'read the conversation from FILE (if it exists), add this turn, and write it back')
    .option('-a, --attach <file>', "attach an image or video ('-' reads an image from stdin); repeatable", collect, [])
    .option('--each <prompt>', "answer PROMPT for every image or video given as FILE arguments ('-': one file name per line on stdin), the model loaded once")
    .addOption(new Option('--format <format>', 'with --each: json (one line per file, default) or text (a == FILE == header before each answer)').choices(['json', 'text']))
    .option('--json', 'write JSON lines (token events, then done) to stdout', false)
    .option('--top-logprobs <n>', 'with --json, the n most likely tokens at each step', intOption('--top-logprobs', 0, 20), 0);
}

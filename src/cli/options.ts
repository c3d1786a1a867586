// Parsers for option values: a bad value is a UsageError that names the flag, the value and the range.
import { InvalidArgumentError } from 'commander';
import { UsageError } from '../errors.js';

export function intOption(flag: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  return (value: string): number => {
    const n = Number(value);
    if (!/^-?\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`${flag} must be an integer from ${min} to ${max === Number.MAX_SAFE_INTEGER ? 'any size' : max}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function floatOption(flag: string, min: number, max: number, opts: { minExclusive?: boolean } = {}) {
  return (value: string): number => {
    const n = Number(value);
    const low = opts.minExclusive ? n > min : n >= min;
    if (value.trim() === '' || !Number.isFinite(n) || !low || n > max) {
      const range = `${opts.minExclusive ? '(' : '['}${min}, ${max}]`;
      throw new InvalidArgumentError(`${flag} must be a number in ${range}, got ${JSON.stringify(value)}`);
    }
    return n;
  };
}

export function deviceOption(value: string): string {
  if (!/^(auto|cpu|cuda|cuda:\d+)$/.test(value)) {
    throw new InvalidArgumentError(`--device must be auto, cpu, cuda or cuda:N, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** Arithmetic of the CPU's compute-bound products (ViT, visual head, VTE, prefill). */
export type Precision = 'f32' | 'bf16';
export const PRECISIONS: Precision[] = ['f32', 'bf16'];
/** --help text of `--precision` (ask, chat, serve, bench, info). */
export const PRECISION_HELP = "CPU arithmetic of the image encoder and prompt prefill: f32 (default, exact) or bf16 (activations rounded to bf16, AMX or AVX512_BF16 dot products where the CPU has them: faster, slightly different answers; `ovis info` shows the path)";
/** --help text of `--weights` (ask, chat, serve, bench, info). */
export const WEIGHTS_HELP = "how the decoder's weights are held: bf16 (as stored, exact), int8 or int4 (quantized as the model loads: less memory, faster decoding, measured quality in docs/performance.md; CPU only) (default: $OVIS_WEIGHTS, else bf16)";

const WEIGHT_MODES = ['bf16', 'int8', 'int4'];

export function weightsOption(value: string): string {
  if (!WEIGHT_MODES.includes(value)) throw new InvalidArgumentError(`--weights must be bf16, int8 or int4, got ${JSON.stringify(value)}`);
  return value;
}

/** The weight mode: the --weights flag, else $OVIS_WEIGHTS, else undefined (the engine's bf16). */
export function resolveWeights(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string | undefined {
  if (flag !== undefined) return flag;
  const v = env.OVIS_WEIGHTS;
  if (v === undefined || v === '') return undefined;
  if (!WEIGHT_MODES.includes(v)) throw new UsageError(`OVIS_WEIGHTS must be bf16, int8 or int4, got ${JSON.stringify(v)}`);
  return v;
}

/** --help text of `--lora` (ask, chat, bench, serve). */
export const LORA_HELP = 'a LoRA adapter directory as PEFT/ms-swift save it (adapter_config.json, adapter_model.safetensors), merged into the model\'s weights at load';

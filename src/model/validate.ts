// Checks, before any load, that a directory holds an Ovis2.5 model the engine can run (model-spec.md §1):
// the architecture in config.json, the keys the engine reads, the files the CLI reads, and every weight
// file's safetensors header against the tensors the engine maps (names, shapes, BF16). Fast enough for
// every load and for `ovis list`: it reads config.json, the small JSON files, the index and only the
// HEADERS of the weight files (8-byte length + JSON) plus file sizes; never the tensor data.
import type { FileHandle } from 'node:fs/promises';
import { open, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ModelError } from '../errors.js';

export type ModelProblemKind = 'unsupported' | 'incomplete' | 'invalid';

export interface ModelSummary {
  /** Relative file names of the weights, in order (shards sorted, as the engine opens them). */
  weightFiles: string[];
  /** Sum of the weight files' tensor data bytes. */
  weightBytes: number;
  /** Sum of the tensors' element counts. */
  parameters: number;
  /** When the LLM's shape is the released model's (model-spec §1.2 table); otherwise undefined. */
  variant?: '2B' | '9B';
  /** `torch`: pytorch_model*.bin state dicts (a trainer's output), checked by the engine at load. */
  format: 'safetensors' | 'torch';
}

export type ModelCheck =
  | { ok: true; summary: ModelSummary }
  | { ok: false; kind: ModelProblemKind; problems: string[] };

/** What ovis runs, for the messages about other models. */
const RUNS = 'ovis runs Ovis2.5 (AIDC-AI/Ovis2.5-2B, AIDC-AI/Ovis2.5-9B)';
const INDEX = 'model.safetensors.index.json';
const SINGLE = 'model.safetensors';
/** The engine refuses a longer safetensors header (native/src/model/weights.rs). */
const MAX_HEADER = 100 << 20;
/** Above this many problems of one sort (missing tensors, wrong dtype, wrong shape), one summary sentence. */
const LIST_AT_MOST = 5;
/** Element sizes of the safetensors dtypes, for checking that data_offsets span shape × size. */
const DTYPE_BYTES: Record<string, number> = {
  BOOL: 1, U8: 1, I8: 1, F8_E4M3: 1, F8_E5M2: 1,
  I16: 2, U16: 2, F16: 2, BF16: 2,
  I32: 4, U32: 4, F32: 4,
  I64: 8, U64: 8, F64: 8,
};
/** The prefix of the ViT's tensors (model-spec §1.3). */
const VIT = 'visual_tokenizer.vit.vision_model.';
/** LLM shapes of the released models (model-spec §1.2). */
const RELEASED = {
  '2B': { hidden: 2048, layers: 28, heads: 16, kvHeads: 8, headDim: 128, intermediate: 6144, vocab: 151936 },
  '9B': { hidden: 4096, layers: 36, heads: 32, kvHeads: 8, headDim: 128, intermediate: 12288, vocab: 151936 },
} as const;

interface LlmShape {
  hidden: number;
  layers: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  intermediate: number;
  vocab: number;
  tied: boolean;
}
interface VitShape {
  hidden: number;
  intermediate: number;
  layers: number;
  heads: number;
  channels: number;
  imageSize: number;
  patch: number;
  stride: number;
}
interface EngineConfig {
  llm: LlmShape;
  vit: VitShape;
  visualVocab: number;
}

interface TensorEntry {
  file: string;
  dtype: string;
  shape: number[];
  bytes: number;
}

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const shapeText = (s: readonly number[]) => `[${s.join(', ')}]`;
const errText = (e: unknown) => (e as Error)?.message ?? String(e);

class Problems {
  readonly list: Array<{ kind: ModelProblemKind; text: string }> = [];
  add(kind: ModelProblemKind, text: string): void {
    this.list.push({ kind, text });
  }
  /**
   * Each item's sentence as its own problem, or, above LIST_AT_MOST items, one summary sentence with
   * the short form of the first three (e.g. many tensors missing because these are another model's weights).
   */
  addGroup(kind: ModelProblemKind, items: Array<[sentence: string, short: string]>, summary: (count: number, examples: string) => string): void {
    if (items.length <= LIST_AT_MOST) for (const [sentence] of items) this.add(kind, sentence);
    else this.add(kind, summary(items.length, `${items.slice(0, 3).map(([, short]) => short).join(', ')}, …`));
  }
  get kind(): ModelProblemKind {
    const kinds = new Set(this.list.map((p) => p.kind));
    return kinds.has('unsupported') ? 'unsupported' : kinds.has('invalid') ? 'invalid' : 'incomplete';
  }
}

/** Never throws for a bad model (only returns problems); reads no tensor data. */
export async function checkModelDir(dir: string): Promise<ModelCheck> {
  const problems = new Problems();
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) return { ok: false, kind: 'invalid', problems: [`${dir} is not a directory`] };
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { ok: false, kind: 'incomplete', problems: [`${dir} does not exist`] };
    return { ok: false, kind: 'invalid', problems: [`cannot read ${dir}: ${errText(e)}`] };
  }

  // config.json: the architecture first, since another model makes every other finding moot.
  let config: EngineConfig | undefined;
  const cfgFile = await readJsonFile(dir, 'config.json');
  if (cfgFile.state === 'missing' && (await fileSize(join(dir, 'adapter_config.json'))) !== undefined) {
    return { ok: false, kind: 'invalid', problems: [`${dir} is a LoRA adapter, not a model: give the base model with --model and this directory with --lora, or merge them with \`ovis lora merge BASE ${dir} OUT\``] };
  }
  if (cfgFile.state === 'missing') problems.add('incomplete', 'config.json is missing');
  else if (cfgFile.state !== 'ok') problems.add('invalid', cfgFile.problem);
  else if (!isObject(cfgFile.value)) problems.add('invalid', 'config.json is not a JSON object');
  else {
    const arch = architecture(dir, cfgFile.value);
    if (arch.kind === 'unsupported') return { ok: false, kind: 'unsupported', problems: [arch.problem] };
    if (arch.kind === 'invalid') problems.add('invalid', arch.problem);
    else config = engineConfig(cfgFile.value, problems);
  }

  await checkTokenizerAndTemplate(dir, problems);

  const weights = await readWeights(dir, problems);
  if (weights && config && !weights.torch) checkTensors(config, weights, problems);

  if (problems.list.length > 0) return { ok: false, kind: problems.kind, problems: problems.list.map((p) => p.text) };
  const w = weights!;
  let weightBytes = 0;
  let parameters = 0;
  for (const t of w.tensors.values()) {
    weightBytes += t.bytes;
    parameters += numel(t.shape);
  }
  if (w.torch) weightBytes = w.torchBytes;
  const summary: ModelSummary = { weightFiles: w.files, weightBytes, parameters, format: w.torch ? 'torch' : 'safetensors' };
  const variant = config && releasedVariant(config.llm);
  if (variant) summary.variant = variant;
  return { ok: true, summary };
}

/**
 * checkModelDir, then a ModelError (exit 4) naming the directory and the problems (the first five, then
 * "and N more"), ending with `fix` when given (a function gets the kind, to word the fix for it).
 */
export async function validateModelDir(dir: string, fix?: string | ((kind: ModelProblemKind) => string | undefined)): Promise<ModelSummary> {
  const check = await checkModelDir(dir);
  if (check.ok) return check.summary;
  throw new ModelError(problemMessage(dir, check.kind, check.problems, typeof fix === 'function' ? fix(check.kind) : fix));
}

/** The text of validateModelDir's error (exported for callers that report a check without throwing). */
export function problemMessage(dir: string, kind: ModelProblemKind, problems: readonly string[], fix?: string): string {
  const shown = problems.slice(0, LIST_AT_MOST);
  const more = problems.length - shown.length;
  const head = kind === 'incomplete' ? `the model in ${dir} is incomplete` : `${dir} is not a valid Ovis2.5 model directory`;
  let text: string;
  // A sentence about the whole directory (an unsupported model, no such directory) already names it.
  if (problems.length === 1 && shown[0].startsWith(dir)) text = shown[0];
  else if (problems.length === 1) text = `${head}: ${shown[0]}`;
  else text = `${head}:\n${shown.map((p) => `  - ${p}`).join('\n')}${more > 0 ? `\n  and ${more} more` : ''}`;
  if (!fix) return text;
  return problems.length === 1 ? `${text}; ${fix}` : `${text}\n${fix}`;
}

// ---------------------------------------------------------------------------------------------------
// config.json

type Architecture = { kind: 'ovis2_5' } | { kind: 'unsupported' | 'invalid'; problem: string };

/**
 * Which model config.json describes. Ovis2.5 is `model_type: "ovis2_5"` (HF repos); the GitHub training
 * code saves the same architecture as `model_type: "ovis"` with a `vit_config` (ovis/model/configuration_ovis.py).
 * Earlier Ovis generations are `"ovis"` with a `visual_tokenizer_config` instead, whose own model_type
 * names the vision backbone: AIMv2 only in Ovis2, SigLIP in Ovis1.5/1.6, CLIP in the first Ovis releases.
 */
function architecture(dir: string, cfg: Json): Architecture {
  const type = cfg.model_type;
  const archs = Array.isArray(cfg.architectures) ? cfg.architectures : [];
  if (type === 'ovis2_5') return { kind: 'ovis2_5' };
  if (type === undefined || type === null) {
    if (archs.includes('Ovis2_5')) return { kind: 'ovis2_5' };
    return { kind: 'invalid', problem: 'config.json has no model_type (an Ovis2.5 config has "model_type": "ovis2_5")' };
  }
  if (typeof type !== 'string') return { kind: 'invalid', problem: `config.json: model_type is ${JSON.stringify(type)}, expected the string "ovis2_5"` };
  const unsupported = (what: string) => ({ kind: 'unsupported' as const, problem: `${dir} holds ${what} (model_type "${type}"), which ovis does not support yet: ${RUNS}` });
  if (type === 'ovis') {
    const vt = cfg.visual_tokenizer_config;
    if (isObject(cfg.vit_config) && !isObject(vt)) return { kind: 'ovis2_5' };
    const vtType = isObject(vt) ? vt.model_type : undefined;
    const llmType = isObject(cfg.llm_config) ? cfg.llm_config.model_type : undefined;
    if (vtType === 'aimv2_visual_tokenizer') return unsupported('an Ovis2 model');
    if (vtType === 'siglip_visual_tokenizer' || llmType === 'gemma2') return unsupported('an Ovis1.6 or Ovis1.5 model');
    if (vtType === 'clip_visual_tokenizer') return unsupported('an Ovis1.5 or earlier model');
    return unsupported('an earlier Ovis generation (such as Ovis2 or Ovis1.6)');
  }
  if (type === 'ovis2') return unsupported('an Ovis2 model in the transformers format');
  if (type === 'ovis_u1') return unsupported('an Ovis-U1 model');
  if (/^ovis/i.test(type)) return unsupported('an Ovis model of another generation');
  return { kind: 'unsupported', problem: `${dir} is not an Ovis model (model_type "${type}"): ${RUNS}` };
}

/** The keys the engine reads (native/src/model/config.rs, model-spec §1.2), with the engine's checks. */
function engineConfig(cfg: Json, problems: Problems): EngineConfig | undefined {
  const before = problems.list.length;
  const bad = (text: string) => problems.add('invalid', `config.json: ${text}`);
  const section = (key: string, what: string): Json | undefined => {
    const v = cfg[key];
    if (isObject(v)) return v;
    bad(v === undefined ? `${key} is missing (${what})` : `${key} is not a JSON object`);
    return undefined;
  };
  const llm = section('llm_config', 'the Qwen3 decoder settings');
  const vit = section('vit_config', 'the SigLIP2-NaViT vision encoder settings');

  /** A required positive integer. */
  const int = (obj: Json, path: string, key: string): number => {
    const v = obj[key];
    if (v === undefined || v === null) bad(`${path}${key} is missing`);
    else if (!Number.isSafeInteger(v) || (v as number) <= 0) bad(`${path}${key} is ${JSON.stringify(v)}, expected a positive integer`);
    else return v as number;
    return 0;
  };
  /** An optional key: when present, of the right type. */
  const optional = (obj: Json, path: string, key: string, type: 'integer' | 'number' | 'boolean', fallback: number | boolean): any => {
    const v = obj[key];
    if (v === undefined || v === null) return fallback;
    const ok = type === 'integer' ? Number.isSafeInteger(v) && (v as number) > 0 : typeof v === type && (type !== 'number' || Number.isFinite(v));
    if (!ok) bad(`${path}${key} is ${JSON.stringify(v)}, expected ${type === 'integer' ? 'a positive integer' : `a ${type}`}`);
    return ok ? v : fallback;
  };
  /** A key the engine does not read because it implements only the released value: anything else is a different model. */
  const fixed = (obj: Json, path: string, key: string, allowed: (v: unknown) => boolean, expected: string) => {
    if (key in obj && !allowed(obj[key])) bad(`${path}${key} is ${JSON.stringify(obj[key])}, but ovis implements only ${expected}`);
  };

  const visualVocab = int(cfg, '', 'visual_vocab_size');
  let llmShape: LlmShape | undefined;
  if (llm) {
    const p = 'llm_config.';
    llmShape = {
      hidden: int(llm, p, 'hidden_size'),
      layers: int(llm, p, 'num_hidden_layers'),
      heads: int(llm, p, 'num_attention_heads'),
      kvHeads: int(llm, p, 'num_key_value_heads'),
      // The engine would fall back to hidden/heads, but Qwen3's own default is 128: a config without it is ambiguous.
      headDim: int(llm, p, 'head_dim'),
      intermediate: int(llm, p, 'intermediate_size'),
      vocab: int(llm, p, 'vocab_size'),
      // Absent in the 9B config: Qwen3's default, false (model-spec §1.2).
      tied: optional(llm, p, 'tie_word_embeddings', 'boolean', false),
    };
    optional(llm, p, 'max_position_embeddings', 'integer', 40960);
    optional(llm, p, 'rope_theta', 'number', 1e6);
    optional(llm, p, 'rms_norm_eps', 'number', 1e-6);
    fixed(llm, p, 'hidden_act', (v) => v === 'silu', '"silu"');
    fixed(llm, p, 'attention_bias', (v) => v === false || v === null, 'false');
    fixed(llm, p, 'rope_scaling', (v) => v === null, 'null (no RoPE scaling)');
    fixed(llm, p, 'use_sliding_window', (v) => v === false || v === null, 'false');
  }
  let vitShape: VitShape | undefined;
  if (vit) {
    const p = 'vit_config.';
    vitShape = {
      hidden: int(vit, p, 'hidden_size'),
      intermediate: int(vit, p, 'intermediate_size'),
      layers: int(vit, p, 'num_hidden_layers'),
      heads: int(vit, p, 'num_attention_heads'),
      imageSize: int(vit, p, 'image_size'),
      patch: int(vit, p, 'patch_size'),
      channels: optional(vit, p, 'num_channels', 'integer', 3),
      stride: optional(vit, p, 'hidden_stride', 'integer', 2),
    };
    const temporal = optional(vit, p, 'temporal_patch_size', 'integer', 1);
    const window = optional(vit, p, 'window_size', 'integer', 112);
    optional(vit, p, 'layer_norm_eps', 'number', 1e-6);
    const full = vit.fullatt_block_indexes;
    const fullOk =
      full === undefined || full === null ||
      (typeof full === 'string' && full.split('|').every((s) => s.trim() === '' || /^\d+$/.test(s.trim()))) ||
      (Array.isArray(full) && full.every((x) => Number.isSafeInteger(x) && x >= 0));
    if (!fullOk) bad(`${p}fullatt_block_indexes is ${JSON.stringify(full)}, expected null or layer indices joined by "|" (such as "7|15|23|26")`);
    fixed(vit, p, 'hidden_act', (v) => v === 'gelu_pytorch_tanh', '"gelu_pytorch_tanh"');
    fixed(vit, p, 'num_patches', (v) => typeof v === 'number' && v <= 0, '-1 (the Conv2d patch embedding)');
    fixed(vit, p, 'use_rope', (v) => v === true, 'true');
    fixed(vit, p, 'preserve_original_pe', (v) => v === true, 'true');
    if (vitShape.channels !== 3) bad(`${p}num_channels is ${vitShape.channels}, but ovis supports only 3 (RGB)`);
    if (temporal !== 1) bad(`${p}temporal_patch_size is ${temporal}, but ovis supports only 1`);
    if (full !== undefined && full !== null && fullOk && vitShape.patch > 0 && vitShape.stride > 0 && Math.floor(window / vitShape.stride / vitShape.patch) === 0) {
      bad(`${p}window_size ${window} is smaller than one merge cell (hidden_stride ${vitShape.stride} × patch_size ${vitShape.patch})`);
    }
  }
  if (problems.list.length > before || !llmShape || !vitShape) return undefined;

  // The engine's invariants (config.rs check(), vision.rs check_config()), with every value known to be positive.
  const l = llmShape;
  const v = vitShape;
  if (l.heads % l.kvHeads !== 0) bad(`llm_config.num_attention_heads ${l.heads} is not a multiple of num_key_value_heads ${l.kvHeads}`);
  if (l.headDim % 2 !== 0) bad(`llm_config.head_dim ${l.headDim} is odd (rotary embeddings need an even head_dim)`);
  if (v.hidden % v.heads !== 0 || (v.hidden / v.heads) % 4 !== 0) {
    bad(`vit_config.hidden_size ${v.hidden} / num_attention_heads ${v.heads} does not give a head size divisible by 4 (2-D rotary embeddings)`);
  }
  if (v.imageSize < v.patch) bad(`vit_config.image_size ${v.imageSize} is smaller than patch_size ${v.patch}`);
  if (visualVocab < 5) bad(`visual_vocab_size ${visualVocab} is too small (4 indicator rows are reserved)`);
  if (problems.list.length > before) return undefined;
  return { llm: llmShape, vit: vitShape, visualVocab };
}

function releasedVariant(l: LlmShape): '2B' | '9B' | undefined {
  for (const name of ['2B', '9B'] as const) {
    const r = RELEASED[name];
    if (l.hidden === r.hidden && l.layers === r.layers && l.heads === r.heads && l.kvHeads === r.kvHeads && l.headDim === r.headDim && l.intermediate === r.intermediate && l.vocab === r.vocab) return name;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------------
// tokenizer and chat template (what src/prompt/tokenizer.ts and chat-template.ts read)

async function checkTokenizerAndTemplate(dir: string, problems: Problems): Promise<void> {
  const tok = await fileSize(join(dir, 'tokenizer.json'));
  if (tok === undefined) problems.add('incomplete', 'tokenizer.json is missing');
  else if (tok === 0) problems.add('incomplete', 'tokenizer.json is empty');

  // Optional files the CLI parses whenever they exist: a broken one fails every run.
  const tokConfig = await readJsonFile(dir, 'tokenizer_config.json');
  const templateJson = await readJsonFile(dir, 'chat_template.json');
  const generation = await readJsonFile(dir, 'generation_config.json');
  for (const f of [tokConfig, templateJson, generation]) if (f.state === 'bad') problems.add('invalid', f.problem);

  // ChatTemplate.load: chat_template.json's string, else chat_template.jinja, else tokenizer_config.json's
  // chat_template (a string, or a list with an entry named "default").
  if (templateJson.state === 'ok' && isObject(templateJson.value) && typeof templateJson.value.chat_template === 'string') return;
  if ((await fileSize(join(dir, 'chat_template.jinja'))) !== undefined) return;
  if (tokConfig.state === 'ok' && isObject(tokConfig.value)) {
    const t = tokConfig.value.chat_template;
    if (typeof t === 'string') return;
    if (Array.isArray(t) && t.some((e) => isObject(e) && e.name === 'default' && typeof e.template === 'string')) return;
  }
  if (templateJson.state === 'bad' || tokConfig.state === 'bad') return; // already reported
  if (templateJson.state === 'ok') {
    problems.add('invalid', 'chat_template.json has no "chat_template" string, and there is no chat_template.jinja or chat_template in tokenizer_config.json');
  } else {
    problems.add('incomplete', 'no chat template: chat_template.json is missing, and there is no chat_template.jinja or chat_template in tokenizer_config.json');
  }
}

// ---------------------------------------------------------------------------------------------------
// weights

interface Weights {
  files: string[];
  tensors: Map<string, TensorEntry>;
  /** Tensors the index maps to a shard whose header could not be read: neither present nor missing. */
  unknown: Set<string>;
  /** pytorch_model*.bin: no header to read here (a zip with a pickle); the engine checks every tensor. */
  torch?: boolean;
  torchBytes: number;
}

const TORCH_INDEX = 'pytorch_model.bin.index.json';
const TORCH_SINGLE = 'pytorch_model.bin';

/** A trainer's torch.save output (no safetensors): its files, each present; undefined when there is none. */
async function readTorchWeights(dir: string, problems: Problems): Promise<Weights | undefined> {
  const index = await readJsonFile(dir, TORCH_INDEX);
  let files: string[];
  if (index.state === 'missing') {
    if ((await fileSize(join(dir, TORCH_SINGLE))) === undefined) return undefined;
    files = [TORCH_SINGLE];
  } else if (index.state !== 'ok') {
    problems.add('invalid', index.problem);
    return { files: [], tensors: new Map(), unknown: new Set(), torch: true, torchBytes: 0 };
  } else {
    const map = isObject(index.value) ? index.value.weight_map : undefined;
    files = isObject(map) ? [...new Set(Object.values(map).filter((f): f is string => typeof f === 'string'))].sort() : [];
    if (files.length === 0) problems.add('invalid', `${TORCH_INDEX} has no "weight_map" naming its shards`);
  }
  let torchBytes = 0;
  for (const f of files) {
    const size = await fileSize(join(dir, f));
    if (size === undefined) problems.add('incomplete', `${f} is missing${files.length > 1 ? ` (${TORCH_INDEX} names it)` : ''}`);
    else torchBytes += size;
  }
  return { files, tensors: new Map(), unknown: new Set(), torch: true, torchBytes };
}

/** The weight files' headers, as the engine opens them (weights.rs open_dir); undefined when there are none to check. */
async function readWeights(dir: string, problems: Problems): Promise<Weights | undefined> {
  const index = await readJsonFile(dir, INDEX);
  let files: string[];
  let weightMap: Record<string, string> | undefined;
  if (index.state === 'missing') {
    if ((await fileSize(join(dir, SINGLE))) === undefined) {
      const torch = await readTorchWeights(dir, problems);
      if (torch) return torch;
      problems.add('incomplete', `no weights: neither ${SINGLE} nor ${INDEX}`);
      return undefined;
    }
    files = [SINGLE];
  } else if (index.state !== 'ok') {
    problems.add('invalid', index.problem);
    return undefined;
  } else {
    const map = isObject(index.value) ? index.value.weight_map : undefined;
    if (!isObject(map)) {
      problems.add('invalid', `${INDEX} has no "weight_map" object`);
      return undefined;
    }
    weightMap = {};
    const nonString: string[] = [];
    for (const [name, shard] of Object.entries(map)) {
      if (typeof shard === 'string' && shard !== '') weightMap[name] = shard;
      else nonString.push(name);
    }
    if (nonString.length > 0) problems.add('invalid', `${INDEX}: weight_map gives no file name for ${nonString.slice(0, 3).join(', ')}${nonString.length > 3 ? ` and ${nonString.length - 3} more tensors` : ''}`);
    files = [...new Set(Object.values(weightMap))].sort();
    if (files.length === 0) {
      problems.add('invalid', `${INDEX}: weight_map lists no tensors`);
      return undefined;
    }
  }

  const tensors = new Map<string, TensorEntry>();
  const unreadable = new Set<string>();
  const duplicates: Array<[string, string]> = [];
  for (const file of files) {
    const header = await readHeader(dir, file, weightMap !== undefined, problems);
    if (!header) {
      unreadable.add(file);
      continue;
    }
    for (const t of header) {
      const prev = tensors.get(t.name);
      if (prev) duplicates.push([`tensor ${t.name} is stored in both ${prev.file} and ${file}`, t.name]);
      else tensors.set(t.name, t.entry);
    }
  }
  problems.addGroup('invalid', duplicates, (n, ex) => `${n} tensors are stored in more than one weight file (${ex})`);
  // One file and its header unreadable: nothing is known about the tensors (the problem is recorded).
  if (!weightMap && unreadable.size > 0) return undefined;

  const unknown = new Set<string>();
  if (weightMap) {
    const absent: Array<[string, string]> = [];
    for (const [name, shard] of Object.entries(weightMap)) {
      if (unreadable.has(shard)) {
        unknown.add(name);
        continue;
      }
      const t = tensors.get(name);
      if (!t) absent.push([`tensor ${name} is listed in ${INDEX} under ${shard}, but ${shard} does not contain it`, name]);
      else if (t.file !== shard) absent.push([`tensor ${name} is listed in ${INDEX} under ${shard}, but it is stored in ${t.file}`, name]);
    }
    problems.addGroup('invalid', absent, (n, ex) => `${n} tensors listed in ${INDEX} are not in the shard it names (${ex})`);
  }
  return { files, tensors, unknown, torchBytes: 0 };
}

/**
 * The tensors of one weight file from its header (the engine's parse_header checks, weights.rs), or
 * undefined with the problem recorded. A file shorter than its header says is a download that did not finish.
 */
async function readHeader(
  dir: string,
  file: string,
  sharded: boolean,
  problems: Problems,
): Promise<Array<{ name: string; entry: TensorEntry }> | undefined> {
  const path = join(dir, file);
  let fh: FileHandle;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') problems.add('incomplete', sharded ? `${file} is missing (${INDEX} names it)` : `${file} is missing`);
    else problems.add('invalid', `cannot read ${file}: ${errText(e)}`);
    return undefined;
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) {
      problems.add('invalid', `${file} is not a file`);
      return undefined;
    }
    const size = st.size;
    if (size < 8) {
      problems.add('incomplete', `${file} is truncated: ${size} bytes, too short for a safetensors header`);
      return undefined;
    }
    const lenBuf = Buffer.alloc(8);
    await fh.read(lenBuf, 0, 8, 0);
    const n64 = lenBuf.readBigUInt64LE(0);
    if (n64 > BigInt(MAX_HEADER)) {
      problems.add('invalid', `${file} is not a safetensors file: its header length ${n64} is over the 100 MiB limit`);
      return undefined;
    }
    const n = Number(n64);
    if (8 + n > size) {
      problems.add('incomplete', `${file} is truncated: ${size} bytes, shorter than its ${n}-byte header`);
      return undefined;
    }
    const buf = Buffer.alloc(n);
    await fh.read(buf, 0, n, 8);
    let header: unknown;
    try {
      header = JSON.parse(buf.toString('utf8'));
    } catch (e) {
      problems.add('invalid', `${file}: the safetensors header is not valid JSON (${errText(e)})`);
      return undefined;
    }
    if (!isObject(header)) {
      problems.add('invalid', `${file}: the safetensors header is not a JSON object`);
      return undefined;
    }
    const out: Array<{ name: string; entry: TensorEntry }> = [];
    const bad: Array<[string, string]> = [];
    let end = 0;
    for (const [name, v] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const dtype = isObject(v) ? v.dtype : undefined;
      const shape = isObject(v) ? v.shape : undefined;
      const offsets = isObject(v) ? v.data_offsets : undefined;
      const nonNeg = (x: unknown) => Number.isSafeInteger(x) && (x as number) >= 0;
      if (typeof dtype !== 'string' || !Array.isArray(shape) || !shape.every(nonNeg)) {
        bad.push([`${file}: tensor ${name} has no valid dtype and shape`, name]);
        continue;
      }
      if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every(nonNeg) || offsets[0] > offsets[1]) {
        bad.push([`${file}: tensor ${name} has invalid data_offsets ${JSON.stringify(offsets)}`, name]);
        continue;
      }
      const [b, e] = offsets as [number, number];
      const size1 = DTYPE_BYTES[dtype];
      if (size1 !== undefined && numel(shape) * size1 !== e - b) {
        bad.push([`${file}: tensor ${name} of shape ${shapeText(shape)} ${dtype} needs ${numel(shape) * size1} bytes, but its data_offsets span ${e - b}`, name]);
        continue;
      }
      end = Math.max(end, e);
      out.push({ name, entry: { file, dtype, shape, bytes: e - b } });
    }
    if (bad.length > 0) {
      problems.addGroup('invalid', bad, (c, ex) => `${file}: ${c} tensors have inconsistent header entries (${ex})`);
      return undefined;
    }
    const expected = 8 + n + end;
    if (size < expected) problems.add('incomplete', `${file} is truncated: ${size} bytes, expected ${expected}`);
    return out;
  } catch (e) {
    problems.add('invalid', `cannot read ${file}: ${errText(e)}`);
    return undefined;
  } finally {
    await fh.close();
  }
}

/** Every tensor the engine maps, with the shape config.json implies (model-spec §1.3; qwen3.rs, vision.rs, visual_head.rs). */
function expectedTensors(cfg: EngineConfig): Array<[string, number[]]> {
  const { llm: l, vit: v } = cfg;
  const out: Array<[string, number[]]> = [];
  const h = l.hidden;
  const qd = l.heads * l.headDim;
  const kvd = l.kvHeads * l.headDim;
  out.push(['llm.model.embed_tokens.weight', [l.vocab, h]]);
  for (let i = 0; i < l.layers; i++) {
    const p = `llm.model.layers.${i}.`;
    out.push(
      [`${p}input_layernorm.weight`, [h]],
      [`${p}post_attention_layernorm.weight`, [h]],
      [`${p}self_attn.q_norm.weight`, [l.headDim]],
      [`${p}self_attn.k_norm.weight`, [l.headDim]],
      [`${p}self_attn.q_proj.weight`, [qd, h]],
      [`${p}self_attn.k_proj.weight`, [kvd, h]],
      [`${p}self_attn.v_proj.weight`, [kvd, h]],
      [`${p}self_attn.o_proj.weight`, [h, qd]],
      [`${p}mlp.gate_proj.weight`, [l.intermediate, h]],
      [`${p}mlp.up_proj.weight`, [l.intermediate, h]],
      [`${p}mlp.down_proj.weight`, [h, l.intermediate]],
    );
  }
  out.push(['llm.model.norm.weight', [h]]);
  if (!l.tied) out.push(['llm.lm_head.weight', [l.vocab, h]]);

  const d = v.hidden;
  const side = Math.floor(v.imageSize / v.patch);
  out.push(
    [`${VIT}embeddings.patch_embedding.weight`, [d, v.channels, v.patch, v.patch]],
    [`${VIT}embeddings.patch_embedding.bias`, [d]],
    [`${VIT}embeddings.position_embedding.weight`, [side * side, d]],
  );
  for (let i = 0; i < v.layers; i++) {
    const p = `${VIT}encoder.layers.${i}.`;
    for (const n of ['layer_norm1', 'layer_norm2']) out.push([`${p}${n}.weight`, [d]], [`${p}${n}.bias`, [d]]);
    for (const n of ['q_proj', 'k_proj', 'v_proj', 'out_proj']) out.push([`${p}self_attn.${n}.weight`, [d, d]], [`${p}self_attn.${n}.bias`, [d]]);
    out.push([`${p}mlp.fc1.weight`, [v.intermediate, d]], [`${p}mlp.fc1.bias`, [v.intermediate]]);
    out.push([`${p}mlp.fc2.weight`, [d, v.intermediate]], [`${p}mlp.fc2.bias`, [d]]);
  }
  // Never applied, but present in every checkpoint and checked by the engine.
  out.push([`${VIT}post_layernorm.weight`, [d]], [`${VIT}post_layernorm.bias`, [d]]);

  const vv = cfg.visualVocab;
  out.push(
    ['visual_tokenizer.head.0.weight', [vv - 4, v.stride * v.stride * d]],
    ['visual_tokenizer.head.1.weight', [vv - 4]],
    ['visual_tokenizer.head.1.bias', [vv - 4]],
    ['vte.weight', [vv, h]],
  );
  return out;
}

/** The engine maps every expected tensor as BF16 of exactly the configured shape (weights.rs `bf16`). */
function checkTensors(cfg: EngineConfig, w: Weights, problems: Problems): void {
  const missing: Array<[string, string]> = [];
  const dtypes: Array<[string, string]> = [];
  const shapes: Array<[string, string]> = [];
  const expected = expectedTensors(cfg);
  for (const [name, shape] of expected) {
    const t = w.tensors.get(name);
    if (!t) {
      if (!w.unknown.has(name)) missing.push([`tensor ${name} (shape ${shapeText(shape)} from config.json) is missing from the weights`, name]);
      continue;
    }
    if (t.dtype !== 'BF16') dtypes.push([`tensor ${name} in ${t.file} is ${t.dtype}, but ovis runs BF16 weights only (the released dtype)`, `${name} ${t.dtype}`]);
    if (t.shape.length !== shape.length || t.shape.some((x, i) => x !== shape[i])) {
      shapes.push([`tensor ${name} in ${t.file} has shape ${shapeText(t.shape)}, but config.json implies ${shapeText(shape)}`, `${name} ${shapeText(t.shape)} instead of ${shapeText(shape)}`]);
    }
  }
  problems.addGroup('invalid', missing, (n, ex) =>
    `${n} of the ${expected.length} tensors of an Ovis2.5 model with this config.json are missing from the weights (${ex}): they are not Ovis2.5 weights in the released layout, or not the weights of this config.json`);
  problems.addGroup('invalid', dtypes, (n, ex) => `${n} tensors are not BF16 (${ex}): ovis runs BF16 weights only (the released dtype)`);
  problems.addGroup('invalid', shapes, (n, ex) => `${n} tensors do not have the shapes config.json implies (${ex}): the weights do not belong to this config.json`);
}

// ---------------------------------------------------------------------------------------------------
// small file helpers

type JsonFile = { state: 'ok'; value: unknown } | { state: 'missing' } | { state: 'bad'; problem: string };

/** A small JSON file of the model directory: parsed, missing, or a problem sentence naming it. */
async function readJsonFile(dir: string, file: string): Promise<JsonFile> {
  let text: string;
  try {
    text = await readFile(join(dir, file), 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return { state: 'missing' };
    if (code === 'EISDIR') return { state: 'bad', problem: `${file} is a directory, not a file` };
    return { state: 'bad', problem: `cannot read ${file}: ${errText(e)}` };
  }
  try {
    return { state: 'ok', value: JSON.parse(text) };
  } catch (e) {
    return { state: 'bad', problem: text.trim() === '' ? `${file} is empty` : `${file} is not valid JSON (${errText(e)})` };
  }
}

/** Size of a file (following symlinks, as in the Hugging Face cache); undefined when there is none. */
async function fileSize(path: string): Promise<number | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st.size : undefined;
  } catch {
    return undefined;
  }
}

function numel(shape: readonly number[]): number {
  let n = 1;
  for (const x of shape) n *= x;
  return n;
}

// Typed messages of protocol version 1 (docs/protocol.md); key order here is the key order on the wire.
import { encodeFrame } from './frame.js';

export const PROTOCOL_VERSION = 1;

export const Kind = {
  hello: 0x01,
  loadModel: 0x02,
  generate: 0x03,
  cancel: 0x04,
  closeSession: 0x05,
  shutdown: 0x06,
  helloOk: 0x81,
  modelLoaded: 0x82,
  token: 0x83,
  done: 0x84,
  sessionClosed: 0x85,
  progress: 0x86,
  error: 0x8f,
} as const;

export interface Sampling {
  temperature: number;
  top_k: number;
  top_p: number;
  repetition_penalty: number;
  seed: number;
}

export interface MediaSpec {
  kind: 'image' | 'video';
  grid: [number, number, number];
}

export interface GenerateRequest {
  id: number;
  session: string;
  keep: number;
  media: MediaSpec[];
  max_new_tokens: number;
  sampling: Sampling;
  stop_ids: number[];
  top_logprobs: number;
}

export interface HelloOk { protocol: number; engine: string; backend: string; device: string; threads: number }
export interface ModelInfo {
  model_type: string;
  backend: string;
  device: string;
  llm: { hidden: number; layers: number; heads: number; kv_heads: number; head_dim: number; intermediate: number; vocab: number; tie_embeddings: boolean; max_positions: number };
  vit: { hidden: number; intermediate?: number; layers: number; heads: number; patch: number; hidden_stride: number };
  /** CPU: the vision encoder's GEMM and attention rates (GFLOP/s) measured at load, for encode estimates. */
  vision_speed?: { gemm_gflops: number; attention_gflops: number };
  visual_vocab: number;
  params: number;
  weight_bytes: number;
  /** The weights found: safetensors or torch.save (.bin) files, and config.json's model_type. */
  checkpoint?: { format: 'safetensors' | 'torch'; files: string[]; model_type: string | null };
  /** How the decoder's linear layers are held (`bf16` as stored, or `int8`/`int4` quantized at load). */
  weights?: 'bf16' | 'int8' | 'int4';
  /** The decode kernel of those layers (CPU): `avx512f`/`avx2+fma`/`portable` (bf16), `avx512-vnni`/`avx2`/`scalar` (int8/int4). */
  weights_kernel?: string;
  /** Bytes the decoder's linear layers and output layer take in memory (CPU). */
  linear_bytes?: number;
  /** Present when a LoRA adapter was merged at load. */
  adapter?: { dir: string; rank: number; alpha: number; rslora: boolean; scale: number; modules: number };
  /** CPU backend: the kernel path of each product family and why (CPU features, AMX permission). */
  kernels?: { precision: 'f32' | 'bf16'; gemm: string; gemm_f32: string; gemv: string; vit_attention: string; bf16: string };
}
export interface ModelLoaded { id: number; info: ModelInfo }
export interface TokenEvent { id: number; token: number; logprob: number; top: Array<[number, number]> }
/**
 * A step before the first token: `vision` (encoder layers done/total) or `prefill` (positions
 * done/total). `elapsed_ms` (vision only): engine time since the encode began.
 */
export interface ProgressEvent { id: number; phase: 'vision' | 'prefill'; done: number; total: number; elapsed_ms?: number }
export interface Timings { vision_ms: number; prefill_ms: number; first_token_ms: number; decode_ms: number; total_ms: number }
export interface DoneEvent {
  id: number;
  finish_reason: 'stop' | 'length' | 'cancelled';
  prompt_tokens: number;
  cached_tokens: number;
  completion_tokens: number;
  timings: Timings;
}
export interface ErrorEvent { id: number | null; code: string; message: string }
export interface SessionClosed { session: string }

export const encodeHello = (client: string) => encodeFrame(Kind.hello, { protocol: PROTOCOL_VERSION, client });
/**
 * `lora`: a PEFT LoRA adapter directory the engine merges into the weights at load (omitted: none).
 * `precision`: the CPU arithmetic of the compute-bound products (omitted: f32, the engine's default).
 * `weights`: `int8`/`int4` quantizes the decoder at load (omitted, or `bf16`: as stored).
 */
export const encodeLoadModel = (id: number, modelDir: string, device: string, lora?: string, precision?: 'f32' | 'bf16', weights?: string) =>
  encodeFrame(Kind.loadModel, {
    id, model_dir: modelDir, device,
    ...(lora === undefined ? {} : { lora }),
    ...(precision === undefined ? {} : { precision }),
    ...(weights === undefined || weights === 'bf16' ? {} : { weights }),
  });
export const encodeCancel = (id: number) => encodeFrame(Kind.cancel, { id });
export const encodeCloseSession = (session: string) => encodeFrame(Kind.closeSession, { session });
export const encodeShutdown = () => encodeFrame(Kind.shutdown, {});

/** A generate frame: ids as i32 LE, then every medium's pixels as f32 LE ([N, 768] each, in order). */
export function encodeGenerate(req: GenerateRequest, ids: Int32Array, pixels: Float32Array[] = []): Buffer {
  const header = {
    id: req.id,
    session: req.session,
    keep: req.keep,
    n_ids: ids.length,
    media: req.media,
    max_new_tokens: req.max_new_tokens,
    sampling: {
      temperature: req.sampling.temperature,
      top_k: req.sampling.top_k,
      top_p: req.sampling.top_p,
      repetition_penalty: req.sampling.repetition_penalty,
      seed: req.sampling.seed,
    },
    stop_ids: req.stop_ids,
    top_logprobs: req.top_logprobs,
  };
  const parts = [littleEndian(ids), ...pixels.map(littleEndian)];
  return encodeFrame(Kind.generate, header, Buffer.concat(parts));
}

function littleEndian(a: Int32Array | Float32Array): Buffer {
  // x86-64 and arm64 hosts are little-endian; typed arrays use host order.
  return Buffer.from(a.buffer, a.byteOffset, a.byteLength);
}

/** Reads a generate body back (tests and tools). */
export function decodeGenerateBody(body: Buffer, nIds: number): { ids: Int32Array; pixels: Float32Array } {
  const copy = new Uint8Array(body);
  return {
    ids: new Int32Array(copy.buffer, 0, nIds),
    pixels: new Float32Array(copy.buffer, nIds * 4, (copy.byteLength - nIds * 4) / 4),
  };
}

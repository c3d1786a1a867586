// `ovis info`: the model's architecture, sizes and parameter count, and the engine's backend and device.
import { Command, Option } from 'commander';
import { modelName, NotDownloadedError, resolveModel } from '../model/resolve.js';
import { formatRef } from '../model/repo-ref.js';
import { offerDownload } from './pull.js';
import { createLogger } from '../output/logger.js';
import { EngineProcess } from '../engine/engine-process.js';
import { deviceOption, LORA_HELP, PRECISION_HELP, PRECISIONS, type Precision, resolveWeights, WEIGHTS_HELP, weightsOption } from './options.js';
import { UsageError } from '../errors.js';
import { startEngine } from './start-engine.js';
import type { ModelInfo } from '../protocol/index.js';

interface InfoOptions { model?: string; lora?: string; weights?: string; device: string; precision?: Precision; json: boolean; verbose: boolean }

export function infoCommand(): Command {
  return new Command('info')
    .description("show the model's architecture and the engine's backend and device")
    .option('-m, --model <model>', 'model directory or ORG/NAME[@REVISION] (default: $OVIS_MODEL, else AIDC-AI/Ovis2.5-2B when downloaded; otherwise only the engine is shown)')
    .option('--lora <dir>', LORA_HELP)
    .option('--weights <mode>', WEIGHTS_HELP, weightsOption)
    .option('--device <device>', 'where the engine runs: auto, cpu, cuda, cuda:N', deviceOption, 'auto')
    .addOption(new Option('--precision <p>', `show the kernels of this precision; ${PRECISION_HELP}`).choices(PRECISIONS))
    .option('--json', 'print one JSON object', false)
    .option('-v, --verbose', 'show engine logs on stderr', false)
    .action(runInfo);
}

const billions = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)} B` : `${(n / 1e6).toFixed(1)} M`);

async function runInfo(opts: InfoOptions): Promise<void> {
  const log = createLogger({ verbose: opts.verbose });
  if (opts.lora !== undefined && !opts.model && !process.env.OVIS_MODEL) throw new UsageError('--lora needs the base model: give --model too');
  // Without --model: the default model when it is downloaded, else the engine alone.
  const model = await resolveModel(opts.model, opts.model ? { download: offerDownload(log) } : {}).catch((e) => {
    if (opts.model || process.env.OVIS_MODEL || !(e instanceof NotDownloadedError)) throw e;
    log.info(`${modelName(undefined)} is not downloaded (ovis pull fetches it): showing the engine only`);
    return undefined;
  });
  if (!model) {
    const engine = await EngineProcess.start({ onLog: (l) => log.verbose(`engine: ${l}`) });
    const h = engine.hello!;
    await engine.close();
    if (opts.json) process.stdout.write(`${JSON.stringify({ engine: h })}\n`);
    else process.stdout.write(`engine   ovis-engine ${h.engine} (protocol ${h.protocol})\nbackend  ${h.backend}\ndevice   ${h.device}\n`);
    return;
  }
  const dir = model.dir;
  const engine = await startEngine(dir, { device: opts.device, verbose: opts.verbose, lora: opts.lora, precision: opts.precision, weights: resolveWeights(opts.weights) }, log);
  const info = engine.info!;
  await engine.close();
  if (opts.json) {
    process.stdout.write(`${JSON.stringify({ model_dir: dir, model_name: model.ref ? formatRef(model.ref) : undefined, engine: engine.hello, model: info })}\n`);
    return;
  }
  const l = info.llm;
  const v = info.vit;
  process.stdout.write([
    `model        ${model.ref ? `${formatRef(model.ref)} (${dir})` : dir}`,
    `architecture Ovis2.5 (${info.model_type}): SigLIP2-NaViT vision encoder + Qwen3 decoder`,
    `parameters   ${billions(info.params)} (${info.params.toLocaleString('en-US')}), ${(info.weight_bytes / 2 ** 30).toFixed(2)} GiB of weights`,
    `decoder      ${l.layers} layers, hidden ${l.hidden}, ${l.heads} heads / ${l.kv_heads} KV heads × ${l.head_dim}, MLP ${l.intermediate}, vocabulary ${l.vocab}, ${l.tie_embeddings ? 'tied' : 'untied'} lm_head, context ${l.max_positions}`,
    `vision       ${v.layers} layers, hidden ${v.hidden}, ${v.heads} heads, patch ${v.patch}, merge ${v.hidden_stride}×${v.hidden_stride}; visual vocabulary ${info.visual_vocab}`,
    ...checkpointLines(info),
    `engine       ovis-engine ${engine.hello?.engine} (protocol ${engine.hello?.protocol})`,
    `backend      ${info.backend}`,
    `device       ${info.device}`,
    ...kernelLines(info),
  ].join('\n') + '\n');
}

/** CPU backend: which kernels run the products and why (CPU features, the AMX permission). */
function kernelLines(info: ModelInfo): string[] {
  const k = info.kernels;
  if (!k) return [];
  return [
    `precision    ${k.precision}${k.precision === 'f32' ? ' (exact)' : ' (activations rounded to bf16 in the image encoder, head and prefill products)'}`,
    `kernels      GEMM ${k.gemm}${k.gemm !== k.gemm_f32 ? ` (f32: ${k.gemm_f32})` : ''}; GEMV ${k.gemv}; ViT attention ${k.vit_attention}`,
    `bf16         ${k.precision === 'bf16' ? '' : '(with --precision bf16) '}${k.bf16}`,
  ];
}

/** What was found on disk: the weight format and files, config.json's model_type, the adapter merged. */
function checkpointLines(info: ModelInfo): string[] {
  const lines: string[] = [];
  const c = info.checkpoint;
  if (c) {
    const what = c.format === 'torch' ? 'torch.save state dict (pytorch_model*.bin, a trainer\'s output)' : 'safetensors';
    const files = c.files.length === 1 ? c.files[0] : `${c.files.length} shards (${c.files[0]} …)`;
    lines.push(`weights      ${what}: ${files}; config model_type ${JSON.stringify(c.model_type)}`);
  }
  if (info.weights) {
    const held = info.linear_bytes === undefined ? '' : `, linear layers ${(info.linear_bytes / 2 ** 30).toFixed(2)} GiB in memory`;
    const how = info.weights === 'bf16' ? 'bf16 as stored' : `${info.weights}, quantized at load (per-group scales)`;
    lines.push(`decode       ${how}; kernel ${info.weights_kernel ?? 'the GPU\'s'}${held}`);
  }
  const a = info.adapter;
  if (a) lines.push(`adapter      LoRA ${a.dir}: ${a.modules} modules, rank ${a.rank}, alpha ${a.alpha}${a.rslora ? ' (rsLoRA)' : ''}, scale ${a.scale}, merged at load`);
  return lines;
}

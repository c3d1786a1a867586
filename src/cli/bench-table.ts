// The table of `ovis bench`, written a row at a time: the engine's plan line names every row before
// any is measured, so the label column's width is fixed from the start and each figure's row can be
// printed, aligned, the moment its line arrives (native/src/bench/report.rs describes the lines).

const ms = (v: number) => `${v < 10 ? v.toFixed(2) : v.toFixed(1)} ms`;

interface PlannedImage {
  side: number;
  patches: number;
  positions: number;
}

export class BenchTable {
  private width = 0;
  /** ms per decoded token, once measured: the floor's row compares with it. */
  private decodeMs?: number;

  /** The text (zero or more whole lines) that one engine line adds to the table. */
  rows(msg: any): string {
    switch (msg.type) {
      case 'plan':
        this.width = Math.max(...labels(msg).map((l) => l.length));
        return this.lines([['model', msg.model], ['backend / device', `${msg.backend} / ${msg.device}`]]);
      case 'figure':
        return this.lines(this.figure(msg));
      case 'report':
        return footer(msg);
      default:
        return '';
    }
  }

  private figure(f: any): Array<[string, string]> {
    switch (f.figure) {
      case 'vision_encode':
        return [[encodeLabel(f), ms(f.ms)]];
      case 'time_to_first_token':
        return [[firstTokenLabel(f), ms(f.ms)]];
      case 'prefill':
        return [[`prefill (${f.tokens} tokens)`, `${f.tokens_per_s.toFixed(1)} tokens/s (${ms(f.ms)})`]];
      case 'decode':
        this.decodeMs = f.ms_per_token;
        return [[`decode (context ${f.context})`, `${ms(f.ms_per_token)}/token (${f.tokens_per_s.toFixed(1)} tokens/s)`]];
      case 'weights':
        return [['weights', `${f.weights} (decode kernel ${f.kernel}; linear layers ${(f.linear_bytes / 2 ** 30).toFixed(2)} GiB)`]];
      case 'quality':
        return [['quality vs bf16', `last-position logits cosine ${f.logits_cosine.toFixed(5)}; greedy ids agree ${f.greedy_agree}/${f.greedy_of} (${f.prompt_tokens}-token prompt)`]];
      case 'peak_memory':
        return [['peak memory', `${(f.bytes / 2 ** 30).toFixed(2)} GiB`]];
      case 'concurrency': {
        const run = (r: any) => `${r.tokens_per_s.toFixed(1)} tokens/s in all, ${ms(r.ms_per_token_median)}/token per stream (p99 gap ${ms(r.gap_p99_ms)})`;
        const times = (x: number | null | undefined) => (x == null || !Number.isFinite(x) ? '?' : `${x.toFixed(1)}×`);
        const ratios = f.ratios ?? {};
        const prefill = f.with_prefill;
        const rows: Array<[string, string]> = [[concurrencyLabel(f.streams), `${run(f.decode)}; ${times(ratios.aggregate_vs_one)} one stream`]];
        // with_prefill is null on CUDA (no chunked prefill beside the batched decode yet).
        if (prefill) {
          const prefilled = prefill.prefill_done ? 'prefill done' : `${prefill.prefilled} of ${prefill.prompt} positions prefilled`;
          rows.push([prefillingLabel(f.streams, prefill.prompt), `${run(prefill)}; p99 gap ${times(ratios.gap_p99_vs_step)} the step; ${prefilled}`]);
        }
        return rows;
      }
      case 'profile':
        return profileRows(f);
      case 'floor': {
        const rows: Array<[string, string]> = [['decode floor', `${ms(f.decode_ms_per_token)}/token (${(f.weight_bytes_per_token / 1e9).toFixed(2)} GB at ${(f.read_bandwidth_bytes_per_s / 1e9).toFixed(1)} GB/s read)`]];
        if (this.decodeMs) rows.push(['decode vs floor', `${((f.decode_ms_per_token / this.decodeMs) * 100).toFixed(0)} % of the bandwidth floor`]);
        return rows;
      }
      default:
        return [];
    }
  }

  private lines(rows: Array<[string, string]>): string {
    return rows.map(([k, v]) => `${k.padEnd(this.width)}  ${v}\n`).join('');
  }
}

const encodeLabel = (i: { side: number; patches: number }) => `vision encode ${i.side}² (${i.patches} patches)`;
const firstTokenLabel = (i: { side: number; positions: number }) => `time to first token ${i.side}² (${i.positions} positions)`;

const concurrencyLabel = (n: number) => `${n} stream${n === 1 ? '' : 's'} decoding`;
const prefillingLabel = (n: number, prompt: number) => `${concurrencyLabel(n)} + a ${prompt}-token prefill`;

/** Every row label the plan announces, for the column width. */
function labels(plan: any): string[] {
  if (plan.concurrency?.length) {
    const prompt = plan.long_prompt ?? Math.max(plan.prompt_tokens, 512);
    return ['model', 'backend / device', 'weights', ...plan.concurrency.flatMap((n: number) => [concurrencyLabel(n), prefillingLabel(n, prompt)])];
  }
  const images = (plan.images as PlannedImage[]).flatMap((i) => [encodeLabel(i), firstTokenLabel(i)]);
  const profile = plan.profile_stages?.length ? [PEAK_LABEL, ...plan.profile_stages.map(stageLabel)] : [];
  return ['model', 'backend / device', 'weights', 'quality vs bf16', ...images, `prefill (${plan.prompt_tokens} tokens)`, `decode (context ${plan.decode_context})`, 'peak memory', 'decode floor', 'decode vs floor', ...profile];
}

const PEAK_LABEL = 'profile: FMA peak (measured)';
const stageLabel = (name: string) => `  ${name}`;

/** One row per stage of the --profile pass; compute stages with their rate and share of the FMA peak. */
function profileRows(p: any): Array<[string, string]> {
  const rows: Array<[string, string]> = [[PEAK_LABEL, `${p.fma_peak_gflop_per_s.toFixed(0)} GFLOP/s (${p.fma_peak_isa}; kernels: ${p.gemm_path})`]];
  for (const s of p.stages) {
    const rate = s.gflop_per_s === undefined ? '' : `, ${s.gflop_per_s.toFixed(0)} GFLOP/s = ${s.percent_of_peak.toFixed(0)} % of peak`;
    rows.push([stageLabel(s.stage), `${ms(s.ms)} in ${s.calls} call${s.calls === 1 ? '' : 's'}${rate}`]);
  }
  return rows;
}

function footer(b: any): string {
  if (b.concurrency?.length) return `(decode context ${b.decode_context}, ${b.decode_tokens}+ tokens per stream through the engine's batch scheduler; gaps between each stream's tokens)\n`;
  const timed = b.repeats === 1 ? 'one timed run each' : `medians of ${b.repeats}`;
  const runs = b.warmup ? `${timed} after ${b.warmup} warm-up` : `${timed}, no warm-up`;
  const encode = b.vision_encode_in_first_token_runs ? '; vision encode timed inside the first-token runs' : '';
  return `(${runs}${encode})\n`;
}

// /metrics in the Prometheus text exposition format (version 0.0.4), written by hand: a few
// counters, gauges and two histograms do not justify a client library. Names follow Prometheus'
// conventions (base units: seconds; `_total` for counters).

/** Upper bounds of histogram buckets, seconds. */
const TTFT_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];
const ITL_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

class Histogram {
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(readonly bounds: number[]) {
    this.counts = bounds.map(() => 0);
  }

  observe(v: number): void {
    this.sum += v;
    this.count += 1;
    for (let i = 0; i < this.bounds.length; i++) if (v <= this.bounds[i]) this.counts[i] += 1;
  }

  lines(name: string): string[] {
    const out = this.bounds.map((b, i) => `${name}_bucket{le="${b}"} ${this.counts[i]}`);
    out.push(`${name}_bucket{le="+Inf"} ${this.count}`, `${name}_sum ${this.sum}`, `${name}_count ${this.count}`);
    return out;
  }
}

export class Metrics {
  /** Finished HTTP requests to the API by route and status code. */
  private requests = new Map<string, number>();
  promptTokens = 0;
  cachedTokens = 0;
  generationTokens = 0;
  /** Completions stopped because their client went away. */
  cancelled = 0;
  engineRestarts = 0;
  readonly ttft = new Histogram(TTFT_BUCKETS);
  readonly itl = new Histogram(ITL_BUCKETS);

  countRequest(route: string, status: number): void {
    const key = `route="${route}",status="${status}"`;
    this.requests.set(key, (this.requests.get(key) ?? 0) + 1);
  }

  /** The text for a scrape; `gauges` are read at scrape time. */
  render(gauges: { running: number; queued: number; engineUp: boolean }): string {
    const lines: string[] = [];
    const metric = (name: string, type: string, help: string, values: string[]) => lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, ...values);
    metric('ovis_http_requests_total', 'counter', 'API requests answered, by route and HTTP status.', [...this.requests].map(([k, v]) => `ovis_http_requests_total{${k}} ${v}`));
    metric('ovis_prompt_tokens_total', 'counter', 'Prompt positions of finished completions (cached ones included).', [`ovis_prompt_tokens_total ${this.promptTokens}`]);
    metric('ovis_prompt_cached_tokens_total', 'counter', 'Prompt positions reused from the engine\'s KV cache instead of prefilled.', [`ovis_prompt_cached_tokens_total ${this.cachedTokens}`]);
    metric('ovis_generation_tokens_total', 'counter', 'Tokens generated.', [`ovis_generation_tokens_total ${this.generationTokens}`]);
    metric('ovis_cancelled_requests_total', 'counter', 'Completions cancelled because the client disconnected.', [`ovis_cancelled_requests_total ${this.cancelled}`]);
    metric('ovis_engine_restarts_total', 'counter', 'Times the engine died and was started again.', [`ovis_engine_restarts_total ${this.engineRestarts}`]);
    metric('ovis_time_to_first_token_seconds', 'histogram', 'From admission to the first generated token.', this.ttft.lines('ovis_time_to_first_token_seconds'));
    metric('ovis_inter_token_latency_seconds', 'histogram', 'Between consecutive generated tokens of one completion.', this.itl.lines('ovis_inter_token_latency_seconds'));
    metric('ovis_requests_running', 'gauge', 'Completions holding an engine slot.', [`ovis_requests_running ${gauges.running}`]);
    metric('ovis_queue_depth', 'gauge', 'Completions waiting for a slot.', [`ovis_queue_depth ${gauges.queued}`]);
    metric('ovis_engine_up', 'gauge', '1 while the engine is serving, 0 while it restarts.', [`ovis_engine_up ${gauges.engineUp ? 1 : 0}`]);
    return `${lines.join('\n')}\n`;
  }
}

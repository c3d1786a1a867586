#!/usr/bin/env node
// A bounded load test of `ovis serve`: starts its own server on loopback (127.0.0.1, a free port),
// then for each client count runs that many clients, each sending streaming chat completions one
// after another until the level's time is up, and reports requests per second and end-to-end
// latency percentiles (plus time to first token). Stops by itself: every level is bounded in time,
// every request in tokens, and the server is stopped at the end.
//
//   node scripts/load-test.mjs [--model DIR] [--concurrency 1,8,32] [--seconds 10] [--max-tokens 32]
//                              [--max-batch 8] [--json]
//
// Default model: the test fixture (test/fixtures/tiny-ovis2.5), whose figures measure the server
// and scheduler rather than the model's arithmetic. Build first: npm run build, npm run build:engine.
import { spawn } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const { values: opt } = parseArgs({
  options: {
    model: { type: 'string', default: join(root, 'test', 'fixtures', 'tiny-ovis2.5') },
    concurrency: { type: 'string', default: '1,8,32' },
    seconds: { type: 'string', default: '10' },
    'max-tokens': { type: 'string', default: '32' },
    'max-batch': { type: 'string', default: '8' },
    json: { type: 'boolean', default: false },
  },
});
const levels = opt.concurrency.split(',').map(Number);
const seconds = Number(opt.seconds);
const maxTokens = Number(opt['max-tokens']);
if (levels.some((n) => !(Number.isInteger(n) && n >= 1 && n <= 256)) || !(seconds > 0 && seconds <= 600) || !(maxTokens >= 1 && maxTokens <= 4096)) {
  console.error('load-test: --concurrency takes counts from 1 to 256, --seconds up to 600, --max-tokens up to 4096');
  process.exit(2);
}

/** Starts `ovis serve` on 127.0.0.1 and resolves with its URL once it listens. */
function startServer() {
  const proc = spawn(process.execPath, [join(root, 'bin', 'ovis.js'), 'serve', '--model', opt.model, '--host', '127.0.0.1', '--port', '0', '--max-batch', opt['max-batch'], '--max-queue', '1024'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { proc.kill('SIGKILL'); reject(new Error(`the server did not start in 120 s:\n${stderr}`)); }, 120_000);
    proc.stderr.on('data', (c) => {
      stderr += c;
      const m = /listening on (http:\/\/\S+) \(model (.+)\)/.exec(stderr);
      if (m) { clearTimeout(timer); resolve({ proc, url: m[1], model: m[2] }); }
    });
    proc.on('exit', (code) => { clearTimeout(timer); reject(new Error(`the server exited (${code}):\n${stderr}`)); });
  });
}

/** One streaming completion: resolves with its latency and time to first token, milliseconds. */
async function oneRequest(server, n) {
  const t0 = performance.now();
  const res = await fetch(`${server.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    // A different prompt each time, so no request is a prefix-cache hit of another.
    body: JSON.stringify({ model: server.model, messages: [{ role: 'user', content: `Request ${n}: describe a mountain in one sentence.` }], max_tokens: maxTokens, temperature: 0, stream: true, chat_template_kwargs: { enable_thinking: false } }),
  });
  if (!res.ok) throw new Error(`HTTP ${res.status}: ${await res.text()}`);
  let first;
  const decoder = new TextDecoder();
  let text = '';
  for await (const chunk of res.body) {
    first ??= performance.now() - t0;
    text += decoder.decode(chunk, { stream: true });
  }
  if (!text.includes('data: [DONE]')) throw new Error(`stream ended without [DONE]: ${text.slice(-200)}`);
  return { latency: performance.now() - t0, ttft: first };
}

const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))];

async function level(server, clients, counter) {
  const until = performance.now() + seconds * 1000;
  const results = [];
  const start = performance.now();
  await Promise.all(Array.from({ length: clients }, async () => {
    while (performance.now() < until) results.push(await oneRequest(server, counter.n++));
  }));
  const elapsed = (performance.now() - start) / 1000;
  const lat = results.map((r) => r.latency).sort((a, b) => a - b);
  const ttft = results.map((r) => r.ttft).sort((a, b) => a - b);
  return {
    clients, requests: results.length, seconds: elapsed, requests_per_s: results.length / elapsed,
    latency_ms: { p50: pct(lat, 50), p90: pct(lat, 90), p99: pct(lat, 99) },
    ttft_ms: { p50: pct(ttft, 50), p90: pct(ttft, 90), p99: pct(ttft, 99) },
  };
}

const server = await startServer();
const rows = [];
try {
  const counter = { n: 0 };
  await oneRequest(server, counter.n++); // warm-up: first use of every code path
  for (const c of levels) {
    const row = await level(server, c, counter);
    rows.push(row);
    if (!opt.json) {
      const f = (v) => v.toFixed(0).padStart(6);
      console.log(`${String(c).padStart(3)} clients: ${row.requests_per_s.toFixed(1).padStart(6)} req/s (${row.requests} in ${row.seconds.toFixed(1)} s) · latency p50 ${f(row.latency_ms.p50)} p90 ${f(row.latency_ms.p90)} p99 ${f(row.latency_ms.p99)} ms · first token p50 ${f(row.ttft_ms.p50)} p99 ${f(row.ttft_ms.p99)} ms`);
    }
  }
} finally {
  server.proc.kill('SIGTERM');
}
if (opt.json) console.log(JSON.stringify({ model: server.model, max_tokens: maxTokens, max_batch: Number(opt['max-batch']), levels: rows }));

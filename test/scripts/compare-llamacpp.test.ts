// scripts/compare-llamacpp.sh without building or benchmarking (the real run takes ~15 minutes and
// is not part of the tests): its argument checks and --dry-run plan, the GGUF generator's reading of
// the engine's 2b preset and its bf16 rounding, and the summary's medians and ratios over a run
// directory in the two programs' real output formats.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { root } from '../helpers/cli.js';
import { skipTest } from '../helpers/skip.js';
import { withTempDir } from '../helpers/temp-dirs.js';

const script = join(root, 'scripts', 'compare-llamacpp.sh');
const helpers = join(root, 'scripts', 'compare-llamacpp');
const run = (args: string[]) => spawnSync('bash', [script, ...args], { encoding: 'utf8', env: { ...process.env, OVIS_COMPARE_CACHE: '/nonexistent/ovis-compare' } });
const hasNumpy = spawnSync('python3', ['-c', 'import numpy'], { encoding: 'utf8' }).status === 0;

test('--dry-run prints the plan with both benchmark commands and builds nothing', () => {
  const r = run(['--dry-run', '--rounds', '2', '--threads', '1']);
  assert.is(r.status, 0, r.stderr);
  assert.match(r.stdout, 'rounds: 2');
  assert.match(r.stdout, 'llama-bench -t 1 -p 128 -n 64 -r 3 -o json');
  assert.match(r.stdout, 'bench --synthetic 2b --device cpu --images none --prompt-tokens 128 --decode-tokens 64 --repeats 3 --warmup 1');
  assert.match(r.stdout, '/nonexistent/ovis-compare');
});

test('bad arguments exit 2 naming the flag and the value', () => {
  for (const [args, message] of [
    [['--rounds', 'x'], "--rounds needs a whole number ≥ 1, got 'x'"],
    [['--rounds', '0'], "--rounds needs a whole number ≥ 1, got '0'"],
    [['--threads'], '--threads needs a value'],
    [['--quiet-cpu', '150'], '--quiet-cpu is a percentage 0–100, got 150'],
    [['--node-llama-cpp', 'latest'], "--node-llama-cpp takes a version like 3.21.1, got 'latest'"],
    [['--engine', '/nonexistent/ovis-engine'], '--engine /nonexistent/ovis-engine is not an executable file'],
    [['--frobnicate'], "unknown argument '--frobnicate'"],
  ] as [string[], string][]) {
    const r = run(['--dry-run', ...args]);
    assert.is(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message);
    assert.is(r.stdout, '');
  }
});

test('make-gguf reads the Qwen3-1.7B shape from the engine preset and rounds to bf16 like half', () => {
  if (!hasNumpy) {
    skipTest('compare-llamacpp make-gguf check', 'python3 has no numpy (install: pip install numpy)');
    return;
  }
  const py = `
import importlib.util, json, sys, numpy as np
from pathlib import Path
spec = importlib.util.spec_from_file_location('mg', ${JSON.stringify(join(helpers, 'make-gguf.py'))})
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
c = m.preset_2b(Path(${JSON.stringify(root)}))
x = np.array([1.0, 1.0 + 2**-8, 1.0 + 3 * 2**-8, -0.02], dtype=np.float32)
w = m.random_matrix(np.random.default_rng(1), (64, 1024)).astype(np.uint32) << 16
w = w.view(np.float32)
n = m.random_norm(np.random.default_rng(1), 4096)
print(json.dumps({"c": c, "bits": m.to_bf16_bits(x).tolist(), "w": [float(w.min()), float(w.max()), float(w.std())], "n": [float(n.min()), float(n.max())]}))`;
  const r = spawnSync('python3', ['-c', py], { encoding: 'utf8' });
  assert.is(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.c, { hidden: 2048, layers: 28, heads: 16, inter: 6144, tie: true, kv_heads: 8, head_dim: 128, vocab: 151936, context: 40960, rope_theta: 1000000, eps: 1e-6 });
  // 1 + 2^-8 is halfway between two bf16 values: ties go to the even one (1.0); 1 + 3·2^-8 goes up.
  assert.equal(o.bits, [0x3f80, 0x3f80, 0x3f82, 0xbca4]);
  // Uniform ±0.02·√3: |w| ≤ 0.0347, standard deviation 0.02 (±2 % over 64 Ki values).
  assert.ok(o.w[0] >= -0.0347 && o.w[1] <= 0.0347, `range ${o.w}`);
  assert.ok(Math.abs(o.w[2] - 0.02) < 0.0004, `std ${o.w[2]}`);
  // 1 ± 0.1 before rounding to bf16 (steps of 2^-8 near 1): within 1 ± (0.1 + 2^-8).
  assert.ok(o.n[0] >= 0.896 && o.n[1] <= 1.104 && o.n[1] - o.n[0] > 0.19, `norms ${o.n}`);
});

test('summarize: medians over rounds, ratios ovis / llama.cpp, a failed run kept but not counted', async () => {
  await withTempDir('ovis-compare-test-', async (dir) => {
    const runs: string[] = [];
    const llama = (round: number, weights: string, pp: number, tg: number) => {
      const file = join(dir, `round${round}-llama-${weights}.json`);
      // llama-bench -o json: one object per test, prefill (n_gen 0) and decode (n_prompt 0).
      writeFileSync(file, JSON.stringify([
        { build_commit: '80fb11a', n_threads: 2, n_prompt: 128, n_gen: 0, avg_ts: pp, stddev_ts: 0.5, samples_ts: [pp] },
        { build_commit: '80fb11a', n_threads: 2, n_prompt: 0, n_gen: 64, avg_ts: tg, stddev_ts: 0.1, samples_ts: [tg] },
      ]));
      runs.push(JSON.stringify({ program: 'llama.cpp', weights, round, file, load_before: '1.0 1.0 1.0', load_after: '2.0 1.2 1.0', seconds: 40, exit: 0 }));
    };
    const ovis = (round: number, weights: string, pp: number | null, tg: number | null, exit = 0) => {
      const file = join(dir, `round${round}-ovis-${weights}.jsonl`);
      // ovis-engine bench: JSON lines, a plan, figures, a report.
      const lines = [{ type: 'plan', prompt_tokens: 128 }];
      if (pp !== null) lines.push({ type: 'figure', figure: 'prefill', tokens: 128, ms: (128 / pp) * 1e3, tokens_per_s: pp } as never);
      if (tg !== null) lines.push({ type: 'figure', figure: 'decode', ms_per_token: 1e3 / tg, tokens_per_s: tg, context: 32, tokens: 64 } as never);
      writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n') + '\n');
      runs.push(JSON.stringify({ program: 'ovis', weights, round, file, load_before: '1.0 1.0 1.0', load_after: '2.0 1.2 1.0', seconds: 60, exit }));
    };
    llama(1, 'bf16', 50, 5); ovis(1, 'bf16', 80, 6); llama(1, 'Q8_0', 55, 9); ovis(1, 'int8', 70, 12);
    llama(2, 'bf16', 40, 4); ovis(2, 'bf16', 100, 7); llama(2, 'Q8_0', 56, 8); ovis(2, 'int8', null, null, 5);
    llama(3, 'bf16', 54, 6); ovis(3, 'bf16', 90, 6.5); llama(3, 'Q8_0', 57, 10); ovis(3, 'int8', 72, 11);
    writeFileSync(join(dir, 'runs.jsonl'), runs.join('\n') + '\n');
    writeFileSync(join(dir, 'quiet.jsonl'), JSON.stringify({ round: 1, cpu_busy_percent: 12, waited_s: 3, verdict: 'quiet', load: '0.5 0.4 0.3' }) + '\n');
    mkdirSync(join(dir, 'out'));
    const out = join(dir, 'out', 'report.json');
    const r = spawnSync('python3', [join(helpers, 'summarize.py'), dir, '--json', out, '--meta', 'cpu=Test CPU'], { encoding: 'utf8' });
    assert.is(r.status, 0, r.stderr);
    const rep = JSON.parse(readFileSync(out, 'utf8'));
    assert.equal(rep.medians['llama.cpp'].bf16.prefill.median_tokens_per_s, 50);
    assert.equal(rep.medians.ovis.bf16.prefill.median_tokens_per_s, 90);
    assert.equal(rep.medians.ovis.int8.decode.runs, [12, 11]); // round 2's failed run is not counted
    assert.ok(Math.abs(rep.ratios['prefill bf16 vs bf16'] - 1.8) < 1e-9);
    assert.ok(Math.abs(rep.ratios['decode bf16 vs bf16'] - 6.5 / 5) < 1e-9);
    assert.ok(Math.abs(rep.ratios['decode int8 vs Q8_0'] - 11.5 / 9) < 1e-9);
    assert.is(rep.ratios['decode int4 vs Q4_0'], undefined); // neither side ran
    assert.is(rep.meta.cpu, 'Test CPU');
    assert.match(r.stdout, '| decode, ovis int8 vs llama.cpp Q8_0 | 9.00 | 11.50 | 1.28× |');
    assert.match(r.stdout, '| decode, ovis int4 vs llama.cpp Q4_0 | — | — | — |');
    assert.match(r.stdout, 'round 1: 12 % of the CPUs busy before it (quiet, waited 3 s, load 0.5 0.4 0.3)');
  });
});

test.run();

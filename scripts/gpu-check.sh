#!/usr/bin/env bash
# The CUDA backend's checks on a GPU machine, in two steps because the GPU machines have no Rust:
#
#   scripts/gpu-check.sh build   here: builds the engine and the CUDA parity test binary into
#                                .gpu-check/ (git-ignored through .git/info/exclude); carry that folder
#   scripts/gpu-check.sh run     there: runs the parity tests (every kernel against its CPU twin, then
#                                the whole model against the fixture and the CPU, then the batched
#                                decode against the solo runs, then continuous batching through the
#                                engine's worker), then the benchmark on synthetic 2B and 9B weights
#                                and the 2B continuous-batching sweep; logs to $OUT when set. The GPU tests
#                                are #[ignore]d in a plain `cargo test`: they run here with
#                                --include-ignored and OVIS_REQUIRE_GPU=1, so no GPU is a failure.
#
# Example with the device tool: run `scripts/gpu-check.sh build` here, then call run with
# carry [".gpu-check"] and command `bash scripts/gpu-check.sh run`.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.gpu-check"

build() {
  cd "$root/native"
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/tmp/target-cuda}"
  cargo build --release
  # Test binaries' paths are printed by cargo as "Executable … (path)".
  local name test_bin
  mkdir -p "$dir"
  for name in cuda_parity cuda_model_parity cuda_batch_parity cuda_batch_serving engine_server; do
    test_bin="$(cargo test --release --test "$name" --no-run 2>&1 | sed -n "s/.*Executable.*(\(.*$name-[^)]*\)).*/\1/p" | tail -1)"
    [ -x "$test_bin" ] || { echo "gpu-check: could not find the $name test binary" >&2; exit 1; }
    cp "$test_bin" "$dir/$name"
  done
  cp "$CARGO_TARGET_DIR/release/ovis-engine" "$dir/ovis-engine"
  grep -qx '/.gpu-check/' "$root/.git/info/exclude" 2>/dev/null || echo '/.gpu-check/' >> "$root/.git/info/exclude"
  echo "gpu-check: built $(du -sh "$dir" | cut -f1) into .gpu-check/ — carry it and run: bash scripts/gpu-check.sh run"
}

run() {
  [ -x "$dir/cuda_model_parity" ] || { echo "gpu-check: .gpu-check/ is missing: run 'scripts/gpu-check.sh build' first and carry it" >&2; exit 1; }
  local out="${OUT:-/tmp/gpu-check}"
  mkdir -p "$out"
  # Compiled kernels are cached here (a fresh machine compiles them once, a few seconds).
  export OVIS_KERNEL_CACHE="${OVIS_KERNEL_CACHE:-/tmp/ovis-kernels}"
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
  # The engine loads libcuda, NVRTC and cuBLASLt at run time: add the usual CUDA 13 folders (system and
  # pip wheels) to the loader path when they hold the libraries, and record what the loader sees.
  local d site
  site="$(python3 -c 'import site; print(site.getsitepackages()[0])' 2>/dev/null || true)"
  for d in /usr/local/cuda/lib64 "$site/nvidia/cu13/lib" "$site/nvidia/cublas/lib" "$site/nvidia/cuda_nvrtc/lib"; do
    if [ -e "$d/libcublasLt.so.13" ] || [ -e "$d/libnvrtc.so.13" ]; then export LD_LIBRARY_PATH="$d:${LD_LIBRARY_PATH:-}"; fi
  done
  { echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"; ldconfig -p | grep -E 'libcuda.so|cublasLt|nvrtc' || true; } | tee "$out/libs.txt"
  local status=0
  # The test binaries were built elsewhere: point them at this tree's copy of the fixture.
  export OVIS_FIXTURE_DIR="$root/test/fixtures/tiny-ovis2.5"
  # A GPU test that finds no GPU fails instead of skipping (set OVIS_REQUIRE_GPU=0 to try it elsewhere).
  export OVIS_REQUIRE_GPU="${OVIS_REQUIRE_GPU:-1}"
  local tests=(--include-ignored --test-threads=1 --nocapture)
  timeout 240 "$dir/cuda_parity" "${tests[@]}" 2>&1 | tee "$out/parity.log" || status=$?
  timeout 240 "$dir/cuda_model_parity" "${tests[@]}" 2>&1 | tee "$out/model-parity.log" || status=$?
  timeout 180 "$dir/cuda_batch_parity" "${tests[@]}" 2>&1 | tee "$out/batch-parity.log" || status=$?
  # Continuous batching through the engine's worker: the six fixture cases served together against
  # each alone, a cancel and a join mid-batch, a session evicted to host memory and back.
  timeout 180 "$dir/cuda_batch_serving" "${tests[@]}" 2>&1 | tee "$out/batch-serving.log" || status=$?
  timeout 120 "$dir/engine_server" "${tests[@]}" cuda_ 2>&1 | tee "$out/engine-server.log" || status=$?
  # A run that passed having run no test (a filter matching nothing) ran no CUDA code: a failure. (The
  # fault-injection tests skip here, with a SKIPPED line: a real driver cannot be made to fault.)
  local log
  for log in parity model-parity batch-parity batch-serving engine-server; do
    if ! grep -qE 'test result: ok\. [1-9][0-9]* passed' "$out/$log.log"; then
      echo "gpu-check: $log ran no test" >&2
      status=1
    fi
  done
  # Each benchmark is bounded so that one hang leaves time for the rest of the device session. The
  # engine writes JSON lines (a plan, each figure as measured, the report last): all are kept in the
  # .jsonl file, and the report is printed.
  for model in 2b 9b; do
    echo "gpu-check: bench --synthetic $model --device cuda"
    timeout 150 "$dir/ovis-engine" bench --synthetic "$model" --device cuda > "$out/bench-$model.jsonl" 2> "$out/bench-$model.log" \
      && tail -n 1 "$out/bench-$model.jsonl" \
      || echo "gpu-check: bench --synthetic $model failed: $(tail -3 "$out/bench-$model.log"); figures so far: $(grep -c '"figure"' "$out/bench-$model.jsonl")"
  done
  # Continuous batching: 1..8 requests decoding together through the engine's scheduler (batched
  # decode steps), alone and while a 2,000-token prompt prefills in chunks (targets: 8 streams ≥ 5×
  # one stream's tokens/s; p99 gap beside the prefill ≤ 3× the step).
  echo "gpu-check: bench --synthetic 2b --device cuda --concurrency 1,2,4,8 --prompt-tokens 2000"
  timeout 180 "$dir/ovis-engine" bench --synthetic 2b --device cuda --concurrency 1,2,4,8 --prompt-tokens 2000 --decode-tokens 32 \
    > "$out/bench-2b-concurrency.jsonl" 2> "$out/bench-2b-concurrency.log" && tail -n 1 "$out/bench-2b-concurrency.jsonl" \
    || echo "gpu-check: the concurrency sweep failed: $(tail -3 "$out/bench-2b-concurrency.log")"
  # The tensor-core attention against the plain FMA kernels, on the 896² image (how much mma buys).
  echo "gpu-check: bench --synthetic 2b --device cuda with OVIS_CUDA_FMA_ATTENTION=1"
  OVIS_CUDA_FMA_ATTENTION=1 timeout 120 "$dir/ovis-engine" bench --synthetic 2b --device cuda --images 896 --repeats 2 \
    > "$out/bench-2b-fma.jsonl" 2> "$out/bench-2b-fma.log" && tail -n 1 "$out/bench-2b-fma.jsonl" \
    || echo "gpu-check: the FMA-attention bench failed: $(tail -3 "$out/bench-2b-fma.log")"
  exit "$status"
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  *) echo "usage: scripts/gpu-check.sh build|run" >&2; exit 2 ;;
esac

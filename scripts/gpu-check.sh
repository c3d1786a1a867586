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
#   scripts/gpu-check.sh dry-run here or there: checks that .gpu-check/ holds every binary, that each
#                                test binary lists the GPU tests `run` expects, and prints every command
#                                `run` would run with its time limit; runs no GPU code.
#
# Example with the device tool: run `scripts/gpu-check.sh build` (and `dry-run`) here, then call run
# with carry [".gpu-check"] and command `bash scripts/gpu-check.sh run`.
#
# The device tool allows 600 s a command: `run` keeps within GPU_CHECK_BUDGET_S (default 540 s) in
# all, each step under its own limit and the time left; a step with under 20 s left is skipped, with
# a line saying so (and the run fails).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dir="$root/.gpu-check"
budget="${GPU_CHECK_BUDGET_S:-540}"
started=$SECONDS
dry=0
step_status=0

# step LIMIT_S CMD...: runs CMD under `timeout` with the smaller of LIMIT_S and what is left of the
# budget (dry-run: prints it). Its status is in $step_status (124: timed out or skipped).
step() {
  local limit=$1 left
  shift
  left=$((budget - (SECONDS - started)))
  [ "$left" -lt "$limit" ] && limit=$left
  if [ "$dry" = 1 ]; then
    echo "gpu-check: would run (limit ${limit}s): $*"
    step_status=0
    return 0
  fi
  if [ "$limit" -lt 20 ]; then
    echo "gpu-check: skipped, the ${budget}s budget is spent: $*" >&2
    step_status=124
    return 0
  fi
  step_status=0
  timeout "$limit" "$@" || step_status=$?
}

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
  # (through git: in a worktree .git is a file, and info/exclude lives in the common git directory)
  local exclude
  exclude="$(git -C "$root" rev-parse --path-format=absolute --git-path info/exclude)"
  mkdir -p "$(dirname "$exclude")"
  grep -qx '/.gpu-check/' "$exclude" 2>/dev/null || echo '/.gpu-check/' >> "$exclude"
  echo "gpu-check: built $(du -sh "$dir" | cut -f1) into .gpu-check/ — carry it and run: bash scripts/gpu-check.sh run"
}

# The binaries `run` needs, and the GPU tests each test binary must list (#[ignore]d: --include-ignored).
binaries=(cuda_parity cuda_model_parity cuda_batch_parity cuda_batch_serving engine_server ovis-engine)
expect_test() {
  case "$1" in
    cuda_parity) echo unsupported_head_widths_fail_before_launching ;;
    cuda_model_parity) echo a_grown_kv_cache_that_runs_out_of_memory_halfway_leaves_the_session_as_it_was ;;
    cuda_batch_parity) echo fixture_cases ;;
    cuda_batch_serving) echo cuda_fixture_cases_served_together_answer_as_each_does_alone ;;
    engine_server) echo cuda_serves_the_same_first_tokens_as_the_cpu ;;
  esac
}

check_built() {
  local name want listed
  for name in "${binaries[@]}"; do
    [ -x "$dir/$name" ] || { echo "gpu-check: .gpu-check/$name is missing: run 'scripts/gpu-check.sh build' first and carry .gpu-check" >&2; exit 1; }
  done
  for name in "${binaries[@]}"; do
    [ "$name" = ovis-engine ] && continue
    want="$(expect_test "$name")"
    # (the list is read whole first: grep -q closing the pipe early would fail it under pipefail)
    listed="$("$dir/$name" --list --include-ignored 2>/dev/null || true)"
    grep -q "^$want" <<< "$listed" \
      || { echo "gpu-check: .gpu-check/$name does not list the GPU test $want (stale build?)" >&2; exit 1; }
  done
  "$dir/ovis-engine" --help > /dev/null 2>&1 || { echo "gpu-check: .gpu-check/ovis-engine --help failed" >&2; exit 1; }
}

# bench LIMIT_S NAME ARGS...: `ovis-engine bench ARGS` under step, its JSON lines (a plan, each figure
# as measured, the report last) kept in $out/NAME.jsonl and the report printed. Each benchmark is bounded
# so that one hang leaves time for the rest of the device session.
bench() {
  local limit=$1 name=$2
  shift 2
  if [ "$dry" = 1 ]; then
    step "$limit" "$dir/ovis-engine" bench "$@"
    return
  fi
  step "$limit" "$dir/ovis-engine" bench "$@" > "$out/$name.jsonl" 2> "$out/$name.log"
  if [ "$step_status" = 0 ]; then
    tail -n 1 "$out/$name.jsonl"
  else
    echo "gpu-check: $name failed (status $step_status): $(tail -3 "$out/$name.log"); figures so far: $(grep -c '"figure"' "$out/$name.jsonl")"
  fi
}

run() {
  check_built
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
  # name, limit (s), log, extra filter
  local plan=("cuda_parity 120 parity" "cuda_model_parity 120 model-parity" "cuda_batch_parity 90 batch-parity"
    "cuda_batch_serving 90 batch-serving" "engine_server 60 engine-server cuda_")
  # (Continuous batching through the engine's worker, cuda_batch_serving: the six fixture cases served
  # together against each alone, a cancel and a join mid-batch, out of memory for a joining request,
  # a device fault in a batched step, a long prompt prefilled beside a decoding stream, a session
  # evicted to host memory and back or recomputed.)
  local entry name limit log filter
  for entry in "${plan[@]}"; do
    read -r name limit log filter <<< "$entry"
    if [ "$dry" = 1 ]; then
      step "$limit" "$dir/$name" "${tests[@]}" ${filter:+"$filter"}
      continue
    fi
    step "$limit" "$dir/$name" "${tests[@]}" ${filter:+"$filter"} > "$out/$log.log" 2>&1
    cat "$out/$log.log"
    [ "$step_status" = 0 ] || status=$step_status
    # A run that passed having run no test (a filter matching nothing) ran no CUDA code: a failure.
    # (The fault-injection tests skip here, with a SKIPPED line: a real driver cannot be made to fault.)
    if ! grep -qE 'test result: ok\. [1-9][0-9]* passed' "$out/$log.log"; then
      echo "gpu-check: $log ran no test, or failed" >&2
      status=1
    fi
  done
  for model in 2b 9b; do
    echo "gpu-check: bench --synthetic $model --device cuda"
    bench 150 "bench-$model" --synthetic "$model" --device cuda
  done
  # Continuous batching: 1..8 requests decoding together through the engine's scheduler (batched
  # decode steps), alone and while a 2,000-token prompt prefills in chunks (targets: 8 streams ≥ 5×
  # one stream's tokens/s; p99 gap beside the prefill ≤ 3× the step).
  echo "gpu-check: bench --synthetic 2b --device cuda --concurrency 1,2,4,8 --prompt-tokens 2000"
  bench 180 bench-2b-concurrency --synthetic 2b --device cuda --concurrency 1,2,4,8 --prompt-tokens 2000 --decode-tokens 32
  # The tensor-core attention against the plain FMA kernels, on the 896² image (how much mma buys).
  echo "gpu-check: bench --synthetic 2b --device cuda with OVIS_CUDA_FMA_ATTENTION=1"
  OVIS_CUDA_FMA_ATTENTION=1 bench 120 bench-2b-fma --synthetic 2b --device cuda --images 896 --repeats 2
  exit "$status"
}

case "${1:-}" in
  build) build ;;
  run) run ;;
  dry-run) dry=1; run ;;
  *) echo "usage: scripts/gpu-check.sh build|run|dry-run" >&2; exit 2 ;;
esac

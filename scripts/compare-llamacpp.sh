#!/usr/bin/env bash
# The CPU comparison with llama.cpp, repeatable (issue 12, item 4). Not part of CI: ~15 minutes on
# 2 cores. See `--help`; results are recorded in docs/performance.md ("llama.cpp on the same machine").
#
# What it does:
#  1. llama.cpp from the source that npm's node-llama-cpp (pinned version) ships as a git bundle:
#     `npm pack`, clone the bundle, build llama-bench and llama-quantize (CPU only, Release, native),
#     all cached under --cache so that a second run does not rebuild (helper: build-llamacpp.sh).
#  2. A bf16 GGUF of the Ovis2.5-2B decoder's shape (Qwen3-1.7B) with random weights drawn like the
#     engine's synthetic ones, the real Qwen3 tokenizer metadata (make-gguf.py), then Q8_0 and Q4_0
#     with llama-quantize (its default recipe for each type).
#  3. A short smoke run of each GGUF: if the native build dies on a signal (with ggml's AMX code
#     compiled in, Q8_0 died with SIGILL on an earlier VM and with SIGSEGV on 2026-12-02's Xeon), the
#     build is redone without the AMX code (in the same build tree) and used for every row, and said so.
#  4. --rounds rounds, alternating: llama-bench bf16, ovis bf16, llama-bench Q8_0, ovis int8,
#     llama-bench Q4_0, ovis int4 (the ovis int rows only when the engine accepts --weights), each
#     round after a quiet-machine check; then the medians and ratios ovis / llama.cpp (summarize.py).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
helpers="$here/compare-llamacpp"

usage() {
  cat <<EOF
usage: scripts/compare-llamacpp.sh [--rounds 3] [--threads 2] [--prompt-tokens 128] [--decode-tokens 64]
       [--repetitions 3] [--quiet-cpu 25] [--quiet-wait 90] [--cache DIR] [--node-llama-cpp 3.21.1]
       [--engine PATH] [--json FILE] [--dry-run]

Builds llama.cpp (cached), makes Qwen3-1.7B-shaped GGUFs (bf16, Q8_0, Q4_0) and runs, alternately,
  llama-bench -t THREADS -p PROMPT -n DECODE -r REPETITIONS -o json     (bf16, Q8_0, Q4_0)
  ovis-engine bench --synthetic 2b --device cpu --images none --prompt-tokens PROMPT
      --decode-tokens DECODE --repeats REPETITIONS --warmup 1 [--weights int8|int4]   (RAYON_NUM_THREADS=THREADS)
for --rounds rounds, then prints medians and ratios (stdout) and writes every figure to --json.

  --rounds N          rounds of the alternating runs (default 3)
  --threads N         threads for both programs (default 2)
  --prompt-tokens N   prefill length (default 128)
  --decode-tokens N   decoded tokens per run (default 64)
  --repetitions N     timed repetitions inside each run, both programs (default 3)
  --quiet-cpu P       before each round, wait until a 3 s sample shows at most P % of all CPUs busy
                      (default 25) ...
  --quiet-wait S      ... for at most S seconds, then go on with a warning (default 90)
  --cache DIR         downloads, builds and GGUFs (default \$OVIS_COMPARE_CACHE or ~/.cache/ovis-compare)
  --node-llama-cpp V  the npm package version whose llama.cpp bundle is built (default 3.21.1)
  --engine PATH       an ovis-engine binary (default: native/target/release/ovis-engine, built with cargo)
  --json FILE         where the JSON report goes (default: CACHE/runs/<UTC time>/report.json)
  --dry-run           check the arguments and the tools, print the plan, build and run nothing
EOF
}

die_usage() { echo "compare-llamacpp: $*" >&2; echo "(see scripts/compare-llamacpp.sh --help)" >&2; exit 2; }
log() { echo "compare-llamacpp: $*" >&2; }

rounds=3 threads=2 prompt=128 decode=64 reps=3 quiet_cpu=25 quiet_wait=90
cache=${OVIS_COMPARE_CACHE:-$HOME/.cache/ovis-compare}
nlc_version=3.21.1 engine="" json="" dry_run=0

whole() { [[ $2 =~ ^[0-9]+$ ]] && (( $2 >= ${3:-1} )) || die_usage "$1 needs a whole number ≥ ${3:-1}, got '${2}'"; }
while (($#)); do
  flag=$1; shift
  case $flag in
    -h|--help) usage; exit 0 ;;
    --dry-run) dry_run=1; continue ;;
    --rounds|--threads|--prompt-tokens|--decode-tokens|--repetitions|--quiet-cpu|--quiet-wait|--cache|--node-llama-cpp|--engine|--json)
      (($#)) || die_usage "$flag needs a value"; value=$1; shift ;;
    *) die_usage "unknown argument '$flag'" ;;
  esac
  case $flag in
    --rounds) whole "$flag" "$value"; rounds=$value ;;
    --threads) whole "$flag" "$value"; threads=$value ;;
    --prompt-tokens) whole "$flag" "$value"; prompt=$value ;;
    --decode-tokens) whole "$flag" "$value"; decode=$value ;;
    --repetitions) whole "$flag" "$value"; reps=$value ;;
    --quiet-cpu) whole "$flag" "$value" 0; ((value <= 100)) || die_usage "--quiet-cpu is a percentage 0–100, got $value"; quiet_cpu=$value ;;
    --quiet-wait) whole "$flag" "$value" 0; quiet_wait=$value ;;
    --cache) cache=$value ;;
    --node-llama-cpp) [[ $value =~ ^[0-9]+\.[0-9]+\.[0-9]+$ ]] || die_usage "--node-llama-cpp takes a version like 3.21.1, got '$value'"; nlc_version=$value ;;
    --engine) [[ -x $value ]] || die_usage "--engine $value is not an executable file"; engine=$value ;;
    --json) json=$value ;;
  esac
done

# Tools: what is missing and can be installed is installed (and said); the rest is a clear error.
missing=()
for tool in git npm tar python3 make; do command -v "$tool" >/dev/null || missing+=("$tool"); done
command -v c++ >/dev/null || command -v g++ >/dev/null || missing+=("a C++ compiler (g++)")
[[ -n $engine ]] || command -v cargo >/dev/null || missing+=("cargo (or give --engine PATH)")
python3 -c 'import numpy' 2>/dev/null || missing+=("python3 numpy")
if ((${#missing[@]})); then
  echo "compare-llamacpp: missing: ${missing[*]}; install them (e.g. apt-get install git npm build-essential python3-numpy)" >&2
  exit 3
fi

run_id=$(date -u +%Y%m%dT%H%M%SZ)
run_dir="$cache/runs/$run_id"
[[ -n $json ]] || json="$run_dir/report.json"
llama_args=(-t "$threads" -p "$prompt" -n "$decode" -r "$reps" -o json)
engine_args=(bench --synthetic 2b --device cpu --images none --prompt-tokens "$prompt" --decode-tokens "$decode" --repeats "$reps" --warmup 1)

if ((dry_run)); then
  command -v cmake >/dev/null && cmake_note="cmake: $(command -v cmake)" || cmake_note="cmake: missing, would be installed with pip"
  cat <<EOF
plan (dry run: nothing is built or run)
  llama.cpp: node-llama-cpp@$nlc_version's llama/gitRelease.bundle, built in $cache ($cmake_note)
  GGUFs: $cache/gguf/qwen3-2b-shape-{bf16,Q8_0,Q4_0}.gguf
  rounds: $rounds, each after a quiet check (≤ $quiet_cpu % CPU busy, waiting at most $quiet_wait s)
  llama-bench ${llama_args[*]} -m GGUF
  RAYON_NUM_THREADS=$threads ${engine:-native/target/release/ovis-engine} ${engine_args[*]} [--weights int8|int4]
  report: $json
EOF
  exit 0
fi

mkdir -p "$cache" "$run_dir"
if ! command -v cmake >/dev/null; then
  log "cmake is missing: installing it from PyPI (pip install --user cmake)"
  python3 -m pip install --user --quiet cmake >&2
  export PATH="$HOME/.local/bin:$PATH"
fi

# 1. The engine (incremental; a no-op when up to date) and llama.cpp.
if [[ -z $engine ]]; then
  log "building the engine (cargo build --release)"
  cargo build --release --quiet --manifest-path "$repo/native/Cargo.toml" >&2
  engine="$repo/native/target/release/ovis-engine"
fi
variant=native
llama_bin=$("$helpers/build-llamacpp.sh" "$cache" "$nlc_version" "$variant")
src="$cache/llama.cpp-$nlc_version"
llama_commit=$(git -C "$src" rev-parse --short HEAD)

# 2. The GGUFs, remade when the generator or the engine's preset changed.
export PYTHONPATH="$src/gguf-py${PYTHONPATH:+:$PYTHONPATH}"
if ! python3 -c 'import gguf' 2>/dev/null; then
  log "llama.cpp's gguf-py does not import here: installing the gguf package from PyPI (pip install --user gguf)"
  python3 -m pip install --user --quiet gguf >&2
fi
gguf_dir="$cache/gguf"; mkdir -p "$gguf_dir"
bf16="$gguf_dir/qwen3-2b-shape-bf16.gguf"
stamp=$(cat "$helpers/make-gguf.py" "$repo/native/src/bench/presets.rs" "$repo/test/fixtures/tiny-ovis2.5/tokenizer.json" | sha256sum | cut -c1-16)
if [[ ! -f $bf16 || $(cat "$bf16.stamp" 2>/dev/null) != "$stamp" ]]; then
  log "making $bf16 (random weights, ~3.4 GB)"
  rm -f "$gguf_dir"/qwen3-2b-shape-*.gguf*
  python3 "$helpers/make-gguf.py" "$bf16.tmp" --repo "$repo"
  mv "$bf16.tmp" "$bf16"; echo "$stamp" > "$bf16.stamp"
fi
quantize() {  # $1 = Q8_0|Q4_0; the binaries of whichever build is in use
  local out="$gguf_dir/qwen3-2b-shape-$1.gguf"
  if [[ ! -f $out ]]; then
    log "llama-quantize → $1"
    "$llama_bin/llama-quantize" "$bf16" "$out.tmp" "$1" "$threads" > "$run_dir/quantize-$1.log" 2>&1 \
      || { tail -20 "$run_dir/quantize-$1.log" >&2; exit 1; }
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}
q8=$(quantize Q8_0); q4=$(quantize Q4_0)

# 3. Smoke runs: does this build survive each weight type here (the AMX path is taken for Q8_0/Q4_0)?
smoke() {  # $1 = gguf; returns llama-bench's exit status
  local rc=0
  "$llama_bin/llama-bench" -m "$1" -t "$threads" -p 16 -n 4 -r 1 -o json > "$run_dir/smoke-$variant-$(basename "$1").json" 2> "$run_dir/smoke-$variant-$(basename "$1").log" || rc=$?
  return $rc
}
amx_note="native build ran bf16, Q8_0 and Q4_0"
for g in "$bf16" "$q8" "$q4"; do
  rc=0; smoke "$g" || rc=$?
  if ((rc != 0)); then
    why="exit $rc"; ((rc > 128)) && why="signal $((rc - 128)) ($(kill -l $((rc - 128)) 2>/dev/null || echo '?'))"
    log "the native llama.cpp build failed on $(basename "$g"): $why (log: $run_dir/smoke-$variant-$(basename "$g").log)"
    [[ $variant == native ]] || { log "the build without AMX fails too: giving up"; exit 1; }
    amx_note="native build failed on $(basename "$g") with $why; measured with a build without ggml's AMX code"
    log "building llama.cpp without ggml's AMX code and using it for every row"
    variant=noamx
    llama_bin=$("$helpers/build-llamacpp.sh" "$cache" "$nlc_version" "$variant")
    for again in "$bf16" "$q8" "$q4"; do smoke "$again" || { log "the no-AMX build fails on $(basename "$again") too: giving up"; exit 1; }; done
    break
  fi
done
log "$amx_note"

# 4. Does the engine take --weights? (another branch adds it; absent → the int rows are skipped)
ovis_weights=(bf16)
if "$engine" bench --help 2>&1 | grep -q -- '--weights'; then
  ovis_weights=(bf16 int8 int4)
else
  log "note: this ovis-engine has no --weights flag: the ovis int8 / int4 rows are skipped (bf16 only)"
fi

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# Percentage of all CPUs busy over a 3 s sample of /proc/stat (everything but idle and iowait).
cpu_busy() {
  local a b
  read -r -a a < <(grep '^cpu ' /proc/stat); sleep 3; read -r -a b < <(grep '^cpu ' /proc/stat)
  local total=0 idle i
  for i in 1 2 3 4 5 6 7 8; do total=$((total + b[i] - a[i])); done
  idle=$((b[4] - a[4] + b[5] - a[5]))
  echo $(( total > 0 ? 100 * (total - idle) / total : 0 ))
}
quiet_check() {  # prints "busy% waited_s quiet|noisy"
  local start=$SECONDS busy
  while :; do
    busy=$(cpu_busy)
    if ((busy <= quiet_cpu)); then echo "$busy $((SECONDS - start)) quiet"; return; fi
    if ((SECONDS - start >= quiet_wait)); then echo "$busy $((SECONDS - start)) noisy"; return; fi
    log "machine busy ($busy % of the CPUs, load $(loadavg)): waiting (up to $quiet_wait s)"
  done
}

# 5. The rounds, alternating the two programs.
runs="$run_dir/runs.jsonl"; : > "$runs"
record() {  # program weights round file load_before load_after seconds rc
  printf '{"program":"%s","weights":"%s","round":%s,"file":"%s","load_before":"%s","load_after":"%s","seconds":%s,"exit":%s}\n' "$@" >> "$runs"
}
run_llama() {  # round, weights name, gguf
  local out="$run_dir/round$1-llama-$2.json" before rc=0 t=$SECONDS
  before=$(loadavg)
  log "round $1: llama-bench $2"
  "$llama_bin/llama-bench" -m "$3" "${llama_args[@]}" > "$out" 2> "${out%.json}.log" || rc=$?
  ((rc == 0)) || log "llama-bench $2 failed (exit $rc): see ${out%.json}.log"
  record llama.cpp "$2" "$1" "$out" "$before" "$(loadavg)" $((SECONDS - t)) "$rc"
}
run_ovis() {  # round, weights
  local out="$run_dir/round$1-ovis-$2.jsonl" before rc=0 t=$SECONDS extra=()
  [[ $2 == bf16 ]] || extra=(--weights "$2")
  before=$(loadavg)
  log "round $1: ovis-engine bench $2"
  RAYON_NUM_THREADS=$threads "$engine" "${engine_args[@]}" "${extra[@]}" > "$out" 2> "${out%.jsonl}.log" || rc=$?
  ((rc == 0)) || log "ovis-engine bench $2 failed (exit $rc): see ${out%.jsonl}.log"
  record ovis "$2" "$1" "$out" "$before" "$(loadavg)" $((SECONDS - t)) "$rc"
}
quiet_log="$run_dir/quiet.jsonl"; : > "$quiet_log"
declare -A gguf_of=([bf16]=$bf16 [Q8_0]=$q8 [Q4_0]=$q4)
declare -A ovis_peer=([bf16]=bf16 [Q8_0]=int8 [Q4_0]=int4)
for ((round = 1; round <= rounds; round++)); do
  read -r busy waited verdict < <(quiet_check)
  [[ $verdict == quiet ]] || log "warning: round $round starts on a busy machine ($busy % of the CPUs busy after waiting $waited s, load $(loadavg)): its figures are noisy"
  printf '{"round":%s,"cpu_busy_percent":%s,"waited_s":%s,"verdict":"%s","load":"%s"}\n' "$round" "$busy" "$waited" "$verdict" "$(loadavg)" >> "$quiet_log"
  for w in bf16 Q8_0 Q4_0; do
    run_llama "$round" "$w" "${gguf_of[$w]}"
    peer=${ovis_peer[$w]}
    [[ " ${ovis_weights[*]} " == *" $peer "* ]] && run_ovis "$round" "$peer"
  done
done

# 6. Medians, ratios, the JSON report.
cpu_model=$(grep -m1 '^model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx512f|avx512_vnni|avx_vnni|avx512_bf16|amx_tile|amx_bf16|amx_int8)$' | tr '\n' ' ')
python3 "$helpers/summarize.py" "$run_dir" --json "$json" \
  --meta "ovis_commit=$(git -C "$repo" rev-parse --short HEAD)$(git -C "$repo" diff --quiet HEAD -- native || echo '+dirty')" \
  --meta "engine=$engine (sha256 $(sha256sum "$engine" | cut -c1-12)$([[ $engine == "$repo/native/target/release/ovis-engine" ]] || echo '; given with --engine: not necessarily built from ovis_commit'))" \
  --meta "llama_cpp_commit=$llama_commit" --meta "node_llama_cpp=$nlc_version" --meta "llama_cpp_build=$variant" \
  --meta "amx=$amx_note" --meta "cpu=$cpu_model" --meta "cpu_flags=${cpu_flags% }" --meta "threads=$threads" \
  --meta "command=scripts/compare-llamacpp.sh --rounds $rounds --threads $threads --prompt-tokens $prompt --decode-tokens $decode --repetitions $reps" \
  --meta "ovis_weights=${ovis_weights[*]}"
log "raw outputs in $run_dir; report: $json"

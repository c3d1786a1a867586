#!/usr/bin/env bash
# Builds llama-bench and llama-quantize (CPU only, Release) from the llama.cpp source that npm's
# node-llama-cpp package ships as a git bundle, cached so that a second run does not rebuild.
#
# usage: build-llamacpp.sh CACHE_DIR NODE_LLAMA_CPP_VERSION VARIANT
#   VARIANT native: -DGGML_NATIVE=ON (every extension this CPU has, AMX included)
#   VARIANT noamx:  the native flags without ggml's AMX code (the AMX tile path crashed with SIGILL
#                   on an earlier VM); the AVX-512 / VNNI / BF16 paths stay as the CPU allows.
# One build tree per llama.cpp version: a variant only changes ggml's CPU flags, so switching
# reconfigures the tree and make recompiles what those flags reach, not a second tree from scratch
# (a full build took ~23 minutes on 2 busy cores). Each variant's binaries (ggml linked in
# statically) are copied to bin-VERSION-VARIANT, so a later run of either variant builds nothing.
# Prints that directory on stdout; progress goes to stderr.
set -euo pipefail
cache=$1 version=$2 variant=$3
log() { echo "compare-llamacpp: $*" >&2; }

pkg_dir="$cache/node-llama-cpp-$version"
src="$cache/llama.cpp-$version"
build="$cache/build-$version"
bin="$cache/bin-$version-$variant"

if [[ -x "$bin/llama-bench" && -x "$bin/llama-quantize" ]]; then
  log "llama.cpp ($variant) already built in $bin"
  echo "$bin"; exit 0
fi

if [[ ! -d "$src/.git" ]]; then
  mkdir -p "$pkg_dir"
  if [[ ! -f "$pkg_dir/node-llama-cpp-$version.tgz" ]]; then
    log "npm pack node-llama-cpp@$version (its llama/gitRelease.bundle holds llama.cpp's source)"
    (cd "$pkg_dir" && npm pack "node-llama-cpp@$version" >&2)
  fi
  tar xzf "$pkg_dir/node-llama-cpp-$version.tgz" -C "$pkg_dir" package/llama/gitRelease.bundle package/llama/llama.cpp.info.json
  bundle="$pkg_dir/package/llama/gitRelease.bundle"
  git bundle list-heads "$bundle" >&2
  rm -rf "$src.tmp"
  git clone --quiet "$bundle" "$src.tmp" >&2
  mv "$src.tmp" "$src"
fi
log "llama.cpp source: $src at $(git -C "$src" rev-parse --short HEAD)"

flags=(-DCMAKE_BUILD_TYPE=Release -DGGML_CUDA=OFF -DGGML_METAL=OFF -DGGML_VULKAN=OFF -DLLAMA_CURL=OFF
       -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF)
if [[ $variant == native ]]; then
  flags+=(-DGGML_NATIVE=ON)
elif [[ $variant == noamx ]]; then
  # -march=native would define __AMX_INT8__ and compile the AMX path in; name the extensions instead.
  cpu_flags=$(grep -m1 '^flags' /proc/cpuinfo)
  has() { [[ " $cpu_flags " == *" $1 "* ]] && echo ON || echo OFF; }
  flags+=(-DGGML_NATIVE=OFF -DGGML_AVX=$(has avx) -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c)
          -DGGML_BMI2=$(has bmi2) -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VBMI=$(has avx512vbmi)
          -DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16) -DGGML_AVX_VNNI=$(has avx_vnni)
          -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF)
else
  log "unknown variant $variant (native|noamx)"; exit 2
fi
log "cmake ${flags[*]}"
cmake -S "$src" -B "$build" "${flags[@]}" >&2
cmake --build "$build" --config Release -j "$(nproc)" --target llama-bench llama-quantize >&2
mkdir -p "$bin.tmp"
cp "$build/bin/llama-bench" "$build/bin/llama-quantize" "$bin.tmp/"
rm -rf "$bin"; mv "$bin.tmp" "$bin"
echo "$bin"

//! The CUDA C sources of `native/kernels/`, embedded in the binary, and their compilation for the
//! GPU present through NVRTC, cached on disk as CUBIN keyed by source hash + arch + NVRTC version.
use super::nvrtc::{self, CompileError, Compiled, Output};
use std::path::PathBuf;

/// One kernel file: its name, source, and the `extern "C"` kernels it defines.
pub struct KernelFile {
    pub name: &'static str,
    pub source: &'static str,
    pub kernels: &'static [&'static str],
}

/// Headers the kernel files `#include`, served to NVRTC from memory.
pub const HEADERS: &[(&str, &str)] = &[("common.cuh", include_str!("../../../kernels/common.cuh"))];

macro_rules! kernel_file {
    ($name:literal, [$($k:literal),* $(,)?]) => {
        KernelFile { name: $name, source: include_str!(concat!("../../../kernels/", $name)), kernels: &[$($k),*] }
    };
}

/// Every kernel file (the NVRTC compile test walks this list and the directory, and checks they agree).
pub const FILES: &[KernelFile] = &[
    kernel_file!("norm.cu", ["rmsnorm_bf16", "rmsnorm_residual_bf16", "layernorm_bf16"]),
    kernel_file!(
        "rope.cu",
        [
            "qk_norm_rope_bf16_hd16",
            "qk_norm_rope_bf16_hd32",
            "qk_norm_rope_bf16_hd64",
            "qk_norm_rope_bf16_hd128",
            "qk_norm_rope_rows_bf16_hd16",
            "qk_norm_rope_rows_bf16_hd32",
            "qk_norm_rope_rows_bf16_hd64",
            "qk_norm_rope_rows_bf16_hd128",
        ]
    ),
    kernel_file!("activation.cu", ["swiglu_bf16", "gelu_tanh_bf16", "add_bf16", "add_bias_bf16"]),
    kernel_file!("embedding.cu", ["embedding_gather_bf16", "merge_rows_bf16", "advance_position_i32"]),
    kernel_file!("vision.cu", ["vision_rope2d_bf16", "pos_embed_bicubic_bf16"]),
    kernel_file!("softmax.cu", ["softmax_rows_bf16"]),
    kernel_file!("gemv.cu", ["gemv_bf16", "gemv_logits_f32", "gemv_rmsnorm_bf16", "gemv_swiglu_bf16", "gemv_rows_bf16", "gemv_rows_logits_f32"]),
    kernel_file!(
        "decode_attention.cu",
        [
            "decode_attention_bf16_hd16",
            "decode_attention_bf16_hd32",
            "decode_attention_bf16_hd64",
            "decode_attention_bf16_hd128",
            "decode_attention_combine_bf16_hd16",
            "decode_attention_combine_bf16_hd32",
            "decode_attention_combine_bf16_hd64",
            "decode_attention_combine_bf16_hd128",
            "decode_attention_rows_bf16_hd16",
            "decode_attention_rows_bf16_hd32",
            "decode_attention_rows_bf16_hd64",
            "decode_attention_rows_bf16_hd128",
            "decode_attention_rows_combine_bf16_hd16",
            "decode_attention_rows_combine_bf16_hd32",
            "decode_attention_rows_combine_bf16_hd64",
            "decode_attention_rows_combine_bf16_hd128",
        ]
    ),
    kernel_file!(
        "attention.cu",
        [
            "prefill_attention_bf16_hd16",
            "prefill_attention_bf16_hd32",
            "prefill_attention_bf16_hd64",
            "prefill_attention_bf16_hd128",
            "segment_attention_bf16_hd24",
            "segment_attention_bf16_hd32",
            "segment_attention_bf16_hd64",
            "segment_attention_bf16_hd72",
            "segment_attention_bf16_hd80",
        ]
    ),
    kernel_file!(
        "attention_mma.cu",
        [
            "prefill_attention_mma_bf16_hd16",
            "prefill_attention_mma_bf16_hd32",
            "prefill_attention_mma_bf16_hd64",
            "prefill_attention_mma_bf16_hd128",
            "segment_attention_mma_bf16_hd24",
            "segment_attention_mma_bf16_hd32",
            "segment_attention_mma_bf16_hd64",
            "segment_attention_mma_bf16_hd72",
            "segment_attention_mma_bf16_hd80",
        ]
    ),
    kernel_file!("sampling.cu", ["logits_penalty_f32", "sample_f32", "logits_penalty_rows_f32", "sample_rows_f32"]),
];

/// Options every compilation gets (besides the architecture).
pub const OPTIONS: &[&str] = &["--fmad=true", "-default-device"];

/// Looks up a kernel file by name.
pub fn file(name: &str) -> Option<&'static KernelFile> {
    FILES.iter().find(|f| f.name == name)
}

/// FNV-1a, 64-bit: a stable hash (std's hasher may change between Rust releases) for cache keys.
fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for p in parts {
        for &b in p.iter().chain(&[0xffu8]) {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    h
}

/// Cache directory: $OVIS_KERNEL_CACHE, else $XDG_CACHE_HOME/ovis/kernels, else ~/.cache/ovis/kernels.
pub fn cache_dir() -> Option<PathBuf> {
    if let Some(d) = std::env::var_os("OVIS_KERNEL_CACHE") {
        return Some(PathBuf::from(d));
    }
    let base = std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from).or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("ovis").join("kernels"))
}

/// The cache file of `f` compiled for `arch` by NVRTC `version`: name-arch-hash.cubin.
pub fn cache_path(f: &KernelFile, arch: &str, version: (i32, i32)) -> Option<PathBuf> {
    Some(cache_path_in(&cache_dir()?, f, arch, version))
}

fn cache_path_in(dir: &std::path::Path, f: &KernelFile, arch: &str, version: (i32, i32)) -> PathBuf {
    let v = format!("{}.{}", version.0, version.1);
    let mut parts: Vec<&[u8]> = vec![f.source.as_bytes(), arch.as_bytes(), v.as_bytes()];
    for (n, s) in HEADERS {
        parts.push(n.as_bytes());
        parts.push(s.as_bytes());
    }
    for o in OPTIONS {
        parts.push(o.as_bytes());
    }
    let stem = f.name.trim_end_matches(".cu");
    dir.join(format!("{stem}-sm{arch}-{:016x}.cubin", fnv1a(&parts)))
}

/// Compiles `f` with the project's options (PTX for checks, CUBIN for loading).
pub fn compile(f: &KernelFile, arch: &str, out: Output) -> Result<Compiled, CompileError> {
    nvrtc::compile(f.name, f.source, HEADERS, arch, out, OPTIONS)
}

/// CUBIN of `f` for `arch` ("90" for H100/H200), from the disk cache when present, else compiled and
/// stored (a cache that cannot be written is only a slower start, never an error).
pub fn cubin(f: &KernelFile, arch: &str) -> Result<Vec<u8>, CompileError> {
    let version = nvrtc::version().map_err(|e| CompileError { name: f.name.into(), status: "library not loaded".into(), log: e })?;
    let path = cache_path(f, arch, version);
    if let Some(bytes) = path.as_ref().and_then(|p| std::fs::read(p).ok()) {
        return Ok(bytes);
    }
    let bytes = compile(f, arch, Output::Cubin)?.bytes;
    if let Some(p) = path {
        let tmp = p.with_extension(format!("tmp{}", std::process::id()));
        let stored = p.parent().map(std::fs::create_dir_all).transpose().is_ok() && std::fs::write(&tmp, &bytes).is_ok() && std::fs::rename(&tmp, &p).is_ok();
        if !stored {
            let _ = std::fs::remove_file(&tmp);
            eprintln!("ovis-engine: could not cache compiled kernels in {} (they will be compiled again next start)", p.display());
        }
    }
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_key_changes_with_arch_and_version() {
        let (f, dir) = (&FILES[0], std::path::Path::new("/tmp/ovis-kernels-test"));
        let a = cache_path_in(dir, f, "90", (13, 0));
        assert_ne!(a, cache_path_in(dir, f, "80", (13, 0)));
        assert_ne!(a, cache_path_in(dir, f, "90", (13, 5)));
        assert_ne!(a, cache_path_in(dir, &FILES[1], "90", (13, 0)));
        assert_eq!(a, cache_path_in(dir, f, "90", (13, 0)));
        assert!(a.to_string_lossy().starts_with("/tmp/ovis-kernels-test/norm-sm90-"));
    }
}

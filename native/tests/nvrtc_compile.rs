//! Every CUDA kernel file compiles through NVRTC, on a machine without a GPU: PTX for compute_90, and
//! CUBIN for sm_90 (which also runs ptxas, so inline PTX and register spills are checked).
//!
//! NVRTC is found through OVIS_NVRTC_LIB (a path to libnvrtc.so*), else the loader's search path, else
//! the PyPI package `nvidia-cuda-nvrtc` in Python's site-packages. Without it these tests are skipped
//! (skip.rs: a SKIPPED line that `npm test` repeats at the end), unless OVIS_REQUIRE_NVRTC=1 or
//! OVIS_REQUIRE_TEST_TOOLS=1 (CI), where they fail with how to install it.
use ovis_engine::backend::cuda::kernels::{self, FILES, HEADERS, OPTIONS};
use ovis_engine::backend::cuda::nvrtc::{self, Output};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
mod skip;

const INSTALL: &str = "install it with `python3 -m pip install nvidia-cuda-nvrtc` (or point OVIS_NVRTC_LIB at a libnvrtc.so.13)";

/// libnvrtc files of the pip packages (CUDA 13: nvidia/cu13/lib; CUDA 12: nvidia/cuda_nvrtc/lib).
fn pip_candidates() -> Vec<PathBuf> {
    let script = "import site, sys; print('\\n'.join(site.getsitepackages() + [site.getusersitepackages()] + sys.path))";
    let dirs = Command::new("python3").args(["-c", script]).output().map(|o| String::from_utf8_lossy(&o.stdout).into_owned()).unwrap_or_default();
    let mut out = Vec::new();
    for d in dirs.lines().filter(|l| !l.is_empty()) {
        for sub in ["nvidia/cu13/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.13", "nvidia/cuda_nvrtc/lib/libnvrtc.so.12"] {
            let p = Path::new(d).join(sub);
            if p.is_file() && !out.contains(&p) {
                out.push(p);
            }
        }
    }
    out
}

/// Loads NVRTC once; Err is the reason it is unavailable.
fn nvrtc_available() -> Result<(), String> {
    static READY: OnceLock<Result<(), String>> = OnceLock::new();
    READY
        .get_or_init(|| {
            if nvrtc::ensure_loaded().is_ok() {
                return Ok(());
            }
            for p in pip_candidates() {
                if nvrtc::preload(&p).is_ok() && nvrtc::ensure_loaded().is_ok() {
                    return Ok(());
                }
            }
            Err(format!("NVRTC was not found (OVIS_NVRTC_LIB unset or unusable, no libnvrtc on the loader path, no pip package nvidia-cuda-nvrtc): {INSTALL}"))
        })
        .clone()
}

/// True when the test may run; records the skip (or fails when NVRTC is required) otherwise.
fn need_nvrtc(test: &str) -> bool {
    let required = ["OVIS_REQUIRE_NVRTC", "OVIS_REQUIRE_TEST_TOOLS"].into_iter().find(|v| std::env::var(v).as_deref() == Ok("1"));
    match (nvrtc_available(), required) {
        (Ok(()), _) => true,
        (Err(why), Some(var)) => panic!("{test}: {var}=1 but {why}"),
        (Err(why), None) => {
            skip::skipped(test, &why);
            false
        }
    }
}

#[test]
fn every_kernel_file_compiles_to_ptx_for_sm_90() {
    if !need_nvrtc("every_kernel_file_compiles_to_ptx_for_sm_90") {
        return;
    }
    eprintln!("NVRTC {:?}", nvrtc::version().unwrap());
    for f in FILES {
        let ptx = kernels::compile(f, "90", Output::Ptx).unwrap_or_else(|e| panic!("{e}"));
        let text = String::from_utf8(ptx.bytes).expect("PTX is text");
        assert!(text.contains(".target sm_90"), "{}: PTX not for sm_90", f.name);
        for k in f.kernels {
            assert!(text.contains(&format!(".entry {k}(")), "{}: kernel {k} is not an extern \"C\" entry of the PTX", f.name);
        }
    }
}

#[test]
fn every_kernel_file_assembles_for_sm_90_without_spills() {
    if !need_nvrtc("every_kernel_file_assembles_for_sm_90_without_spills") {
        return;
    }
    let opts: Vec<&str> = OPTIONS.iter().copied().chain(["--ptxas-options=-v"]).collect();
    for f in FILES {
        let c = nvrtc::compile(f.name, f.source, HEADERS, "90", Output::Cubin, &opts).unwrap_or_else(|e| panic!("{e}"));
        assert!(c.bytes.starts_with(b"\x7fELF"), "{}: CUBIN is not an ELF image", f.name);
        let spills: Vec<&str> = c.log.lines().filter(|l| l.contains("spill") && !l.contains(" 0 bytes spill stores")).collect();
        assert!(spills.is_empty(), "{}: register spills (local memory traffic):\n{}", f.name, spills.join("\n"));
    }
}

#[test]
fn a_broken_kernel_reports_the_nvrtc_log() {
    if !need_nvrtc("a_broken_kernel_reports_the_nvrtc_log") {
        return;
    }
    let src = "#include \"common.cuh\"\nextern \"C\" __global__ void broken_bf16(bf16* x) {\n    x[0] = undefined_thing;\n}\n";
    let err = nvrtc::compile("broken.cu", src, HEADERS, "90", Output::Ptx, OPTIONS).expect_err("an undefined identifier must not compile");
    let msg = err.to_string();
    assert!(msg.contains("broken.cu") && msg.contains("undefined_thing") && msg.contains("error"), "the NVRTC log is missing from: {msg}");
    assert!(msg.contains("(3)"), "the log should point at line 3: {msg}");
}

#[test]
fn the_kernel_directory_and_the_embedded_list_agree() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir).unwrap().filter_map(|e| e.ok()).map(|e| e.file_name().to_string_lossy().into_owned()).filter(|n| n.ends_with(".cu")).collect();
    on_disk.sort();
    let mut listed: Vec<String> = FILES.iter().map(|f| f.name.to_string()).collect();
    listed.sort();
    assert_eq!(on_disk, listed, "native/kernels/*.cu and backend/cuda/kernels.rs FILES must list the same files");
    for f in FILES {
        assert!(f.source.starts_with(&format!("// {}: ", f.name)), "{} must start with `// {}: what it computes`", f.name, f.name);
        for k in f.kernels {
            // A template instantiated per head width adds `_hd<N>` after the dtype.
            let base = match k.rsplit_once("_hd") {
                Some((b, n)) if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) => b,
                _ => k,
            };
            assert!(base.ends_with("_bf16") || base.ends_with("_f32") || base.ends_with("_i32"), "kernel {k} is not named <op>_<dtype>[_hd<N>]");
            assert!(f.source.contains(&format!("{k}(")), "{}: no kernel named {k}", f.name);
        }
    }
}

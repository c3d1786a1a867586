//! Compute backends. The CPU one is always built and is the reference; CUDA is loaded at run time
//! (libcuda, NVRTC and cuBLASLt are opened when first needed), so one binary serves both kinds of machine.
pub mod cpu;
pub mod cuda;

use crate::error::{EngineError, Result};
use crate::model::config::ModelConfig;
use serde_json::json;

/// A human description of this machine's CPU for the handshake and `ovis info`.
pub fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}, {} threads", rayon::current_num_threads())
}

/// Where a model runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Device {
    Cpu,
    /// A CUDA device ordinal.
    Cuda(usize),
}

/// A resolved `--device`: the device, the backend name ("cpu" | "cuda") and a description for people.
#[derive(Debug, Clone, PartialEq)]
pub struct Selection {
    pub device: Device,
    pub backend: String,
    pub description: String,
}

/// What a `--device` value asks for, before looking at the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Request {
    Auto,
    Cpu,
    Cuda(usize),
}

fn parse(device: &str) -> Result<Request> {
    let bad = || EngineError::Device(format!("--device {device:?} is not a device: use auto, cpu, cuda or cuda:N (N a GPU number, e.g. cuda:0)"));
    match device {
        "auto" => Ok(Request::Auto),
        "cpu" => Ok(Request::Cpu),
        "cuda" => Ok(Request::Cuda(0)),
        d => match d.strip_prefix("cuda:") {
            Some(n) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => n.parse().map(Request::Cuda).map_err(|_| bad()),
            _ => Err(bad()),
        },
    }
}

fn cpu(note: Option<String>) -> Selection {
    let description = match note {
        Some(n) => format!("{} ({n})", cpu_description()),
        None => cpu_description(),
    };
    Selection { device: Device::Cpu, backend: "cpu".into(), description }
}

/// Resolves a `--device` value on this machine. `auto` takes CUDA device 0 when the driver loads,
/// a device exists and the CUDA backend is verified (`cuda::VERIFIED`), else the CPU, saying why in
/// the description. `cuda` / `cuda:N` take that device or fail with what this machine has.
pub fn resolve(device: &str) -> Result<Selection> {
    let req = parse(device)?;
    if req == Request::Cpu {
        return Ok(cpu(None));
    }
    let probe = cuda::probe::probe();
    let gpus = match (&probe.result, req) {
        (Ok(g), _) if !g.is_empty() => g,
        (Ok(_), Request::Auto) => return Ok(cpu(Some("no CUDA GPU: the NVIDIA driver sees no device".into()))),
        (Err(why), Request::Auto) => return Ok(cpu(Some(format!("no CUDA GPU: {why}")))),
        (Ok(_), _) => return Err(EngineError::Device(format!("--device {device}: the NVIDIA driver sees no GPU on this machine; use --device cpu (or auto)"))),
        (Err(why), _) => return Err(EngineError::Device(format!("--device {device}: {why}; use --device cpu (or auto)"))),
    };
    let ordinal = match req {
        Request::Cuda(n) => n,
        _ => 0,
    };
    let Some(gpu) = gpus.get(ordinal) else {
        let have = if gpus.len() == 1 { "1 GPU (cuda:0)".to_string() } else { format!("{} GPUs (cuda:0 to cuda:{})", gpus.len(), gpus.len() - 1) };
        return Err(EngineError::Device(format!("--device {device}: there is no GPU number {ordinal}; this machine has {have}")));
    };
    if !cuda::VERIFIED {
        if req == Request::Auto {
            return Ok(cpu(Some(format!("{} found, but {}", gpu.describe(), cuda::NOT_VERIFIED))));
        }
        eprintln!("ovis-engine: warning: the CUDA backend has not been verified on a GPU yet; compare with --device cpu");
        return Ok(Selection { device: Device::Cuda(ordinal), backend: "cuda".into(), description: format!("{} (unverified CUDA backend)", gpu.describe()) });
    }
    Ok(Selection { device: Device::Cuda(ordinal), backend: "cuda".into(), description: gpu.describe() })
}

/// The backend `auto` picks on this machine, as (backend, device description).
pub fn describe_default() -> (String, String) {
    let s = resolve("auto").unwrap_or_else(|_| cpu(None));
    (s.backend, s.description)
}

/// Resolves a `--device` value to (backend, device description) or a clear error.
pub fn select(device: &str) -> Result<(String, String)> {
    resolve(device).map(|s| (s.backend, s.description))
}

/// The `info` object of `model_loaded` for a model of `cfg` on `backend`/`device`.
pub fn model_info(cfg: &ModelConfig, params: u64, weight_bytes: u64, backend: &str, device: &str) -> serde_json::Value {
    let l = &cfg.llm;
    let v = &cfg.vit;
    json!({
        "model_type": "ovis2_5",
        "backend": backend,
        "device": device,
        "llm": {
            "hidden": l.hidden, "layers": l.layers, "heads": l.heads, "kv_heads": l.kv_heads,
            "head_dim": l.head_dim, "intermediate": l.intermediate, "vocab": l.vocab,
            "tie_embeddings": l.tie_embeddings, "max_positions": l.max_positions
        },
        "vit": { "hidden": v.hidden, "intermediate": v.intermediate, "layers": v.layers, "heads": v.heads, "patch": v.patch, "hidden_stride": v.hidden_stride },
        "visual_vocab": cfg.visual_vocab,
        "params": params,
        "weight_bytes": weight_bytes
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_device_form() {
        assert_eq!(parse("auto").unwrap(), Request::Auto);
        assert_eq!(parse("cpu").unwrap(), Request::Cpu);
        assert_eq!(parse("cuda").unwrap(), Request::Cuda(0));
        assert_eq!(parse("cuda:3").unwrap(), Request::Cuda(3));
        for bad in ["cuda:x", "cuda:", "cuda:-1", "gpu", "CUDA", "cuda:1a", ""] {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.contains("is not a device") && e.contains("cuda:N"), "{bad}: {e}");
        }
    }
}

#[cfg(test)]
mod machine_tests {
    use super::*;

    fn has_gpu() -> bool {
        matches!(&cuda::probe::probe().result, Ok(g) if !g.is_empty())
    }

    #[test]
    fn auto_picks_the_cpu_without_a_gpu_and_says_why() {
        let s = resolve("auto").unwrap();
        if has_gpu() && cuda::VERIFIED {
            assert_eq!((s.device, s.backend.as_str()), (Device::Cuda(0), "cuda"));
        } else {
            assert_eq!((s.device, s.backend.as_str()), (Device::Cpu, "cpu"));
            assert!(s.description.contains("no CUDA GPU") || s.description.contains("not passed its parity checks"), "{}", s.description);
        }
        assert_eq!(describe_default(), (s.backend, s.description));
    }

    #[test]
    fn cuda_fails_clearly_without_a_gpu() {
        if has_gpu() {
            return;
        }
        for d in ["cuda", "cuda:0", "cuda:7"] {
            let e = select(d).unwrap_err();
            assert_eq!(e.code(), "device_error");
            let m = e.to_string();
            assert!(m.contains(d) && (m.contains("no NVIDIA driver") || m.contains("no GPU")) && m.contains("--device cpu"), "{m}");
        }
    }

    #[test]
    fn a_missing_gpu_number_names_how_many_exist() {
        if !has_gpu() {
            return;
        }
        let m = select("cuda:999").unwrap_err().to_string();
        assert!(m.contains("no GPU number 999") && m.contains("this machine has"), "{m}");
    }

    #[test]
    fn cpu_is_always_available() {
        assert_eq!(select("cpu").unwrap().0, "cpu");
        assert_eq!(select("cuda:x").unwrap_err().code(), "device_error");
    }
}

//! Compute backends. The CPU one is always built and is the reference; CUDA is selected at run time.
pub mod cpu;

use crate::error::{EngineError, Result};

/// A human description of this machine's CPU for the handshake and `ovis info`.
pub fn cpu_description() -> String {
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("model name")).and_then(|l| l.split(':').nth(1)).map(|s| s.trim().to_string()))
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{model}, {} threads", rayon::current_num_threads())
}

/// The backend `auto` picks on this machine, as (backend, device description).
pub fn describe_default() -> (String, String) {
    ("cpu".into(), cpu_description())
}

/// Resolves a `--device` value to (backend, device description) or a clear error.
pub fn select(device: &str) -> Result<(String, String)> {
    match device {
        "auto" | "cpu" => Ok(("cpu".into(), cpu_description())),
        d if d == "cuda" || d.starts_with("cuda:") => Err(EngineError::Device(format!(
            "--device {d}: this engine has no CUDA backend yet; use --device cpu (or auto)"
        ))),
        d => Err(EngineError::Device(format!("--device {d:?} is not a device: use auto, cpu, cuda or cuda:N"))),
    }
}

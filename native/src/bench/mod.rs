//! `ovis-engine bench`: vision encode, time to first token, prefill and decode speed, peak memory
//! and the bandwidth floor, on a model directory or synthetic weights of the released shapes.
//! `ovis bench` (src/cli/bench.ts) runs this same code and formats its JSON.
mod args;
mod measure;
mod measure_bandwidth;
mod measure_cuda;
pub mod presets;

pub use args::BenchArgs;

use crate::error::Result;
use crate::backend::cuda::model::CudaOvis;
use crate::backend::Device;
use crate::model::ovis::{open_dir, OvisModel};
use crate::model::source::WeightSource;
use std::path::Path;

/// Runs the benchmark described by `argv` (after `bench`); JSON on stdout, progress on stderr.
pub fn main(argv: &[String]) -> i32 {
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        eprintln!("{}", args::USAGE);
        return 0;
    }
    let args = match BenchArgs::parse(argv) {
        Ok(a) => a,
        Err(msg) => {
            eprintln!("ovis-engine bench: {msg}\n\n{}", args::USAGE);
            return 2;
        }
    };
    match run(&args) {
        Ok(report) => {
            println!("{}", serde_json::to_string_pretty(&report).expect("report serialises"));
            0
        }
        Err(e) => {
            eprintln!("ovis-engine bench: {e}");
            if e.code() == "model_error" { 4 } else { 5 }
        }
    }
}

fn run(args: &BenchArgs) -> Result<serde_json::Value> {
    let selection = crate::backend::resolve(&args.device)?;
    let t = std::time::Instant::now();
    let (cfg, source) = match (&args.model, &args.synthetic) {
        (Some(dir), _) => open_dir(Path::new(dir))?,
        (None, Some(name)) => {
            eprintln!("building synthetic {name} weights…");
            (presets::preset_config(name).expect("checked by the parser"), WeightSource::Synthetic(1234))
        }
        (None, None) => unreachable!("checked by the parser"),
    };
    let (backend, device) = (&selection.backend, &selection.description);
    match selection.device {
        Device::Cpu => {
            let model = OvisModel::from_source(cfg, &source)?;
            eprintln!("model ready in {:.1} s", t.elapsed().as_secs_f64());
            measure::measure(&model, args, backend, device)
        }
        Device::Cuda(n) => {
            let model = CudaOvis::load(n, cfg, &source)?;
            eprintln!("model on {device} in {:.1} s", t.elapsed().as_secs_f64());
            measure_cuda::measure(&model, args, backend, device)
        }
    }
}

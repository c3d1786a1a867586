//! `ovis-engine bench`: vision encode, time to first token, prefill and decode speed, peak memory
//! and the bandwidth floor, on a model directory or synthetic weights of the released shapes.
//! `ovis bench` (src/cli/bench.ts) runs this same code and formats its JSON lines (report.rs).
mod args;
mod measure;
mod measure_bandwidth;
mod measure_concurrency;
mod measure_cuda;
mod measure_peak;
mod measure_profile;
mod measure_quality;
pub mod presets;
mod report;

pub use args::BenchArgs;

use crate::error::Result;
use crate::backend::cuda::model::CudaOvis;
use crate::backend::Device;
use crate::backend::cpu::model::OvisModel;
use crate::model::source::{open_model, WeightSource};
use report::Report;
use std::path::Path;

/// Runs the benchmark described by `argv` (after `bench`); JSON lines on stdout, progress on stderr.
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
        Ok(()) => 0,
        Err(e) => {
            eprintln!("ovis-engine bench: {e}");
            if e.code() == "model_error" { 4 } else { 5 }
        }
    }
}

fn run(args: &BenchArgs) -> Result<()> {
    let selection = crate::backend::resolve(&args.device)?;
    let plan = args.plan(matches!(selection.device, Device::Cuda(_)));
    crate::backend::cpu::precision::set_precision(args.precision);
    let weights = crate::backend::cpu::quant::weight_mode(Some(args.weights.name()), &selection.device)?;
    let t = std::time::Instant::now();
    let (cfg, source) = match (&args.model, &args.synthetic) {
        (Some(dir), _) => open_model(Path::new(dir), args.lora.as_deref().map(Path::new))?,
        (None, Some(name)) => (presets::preset_config(name).expect("checked by the parser"), WeightSource::Synthetic(1234)),
        (None, None) => unreachable!("checked by the parser"),
    };
    let (backend, device) = (&selection.backend, &selection.description);
    let mut out = Report::start(args, &plan, backend, device, &cfg.llm);
    if let Some(name) = &args.synthetic {
        eprintln!("building synthetic {name} weights…");
    }
    match selection.device {
        Device::Cpu => {
            let model = OvisModel::from_source(cfg, &source, weights)?;
            eprintln!("model ready in {:.1} s", t.elapsed().as_secs_f64());
            out.weights(&model);
            if args.quality {
                measure_quality::measure(&model, &source, &plan, &mut out)?;
            } else if plan.concurrency.is_empty() {
                measure::measure(&model, &plan, &mut out)?;
                if plan.profile {
                    measure_profile::measure(&model, &plan, &mut out)?;
                }
            } else {
                measure_concurrency::measure(&model, &plan, &mut out)?;
            }
        }
        Device::Cuda(_) if plan.profile => {
            return Err(crate::error::EngineError::BadRequest("--profile times the CPU backend's stages so far: add --device cpu".into()));
        }
        Device::Cuda(n) => {
            let model = CudaOvis::load(n, cfg, &source)?;
            eprintln!("model on {device} in {:.1} s", t.elapsed().as_secs_f64());
            if plan.concurrency.is_empty() {
                measure_cuda::measure(&model, &plan, &mut out)?;
            } else {
                measure_concurrency::measure(&crate::backend::cuda::runner::CudaBatchModel::new(model), &plan, &mut out)?;
            }
        }
    }
    out.finish();
    Ok(())
}

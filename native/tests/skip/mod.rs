//! Tests that cannot run on this machine say so. The GPU tests are `#[ignore = "needs a CUDA GPU…"]`, so
//! plain `cargo test` lists them as ignored; `--include-ignored` (scripts/gpu-check.sh, the fake GPU)
//! runs them, and they call `gpu_present`. libtest has no run-time skip: a test that returns early
//! counts as passed, so `skipped` also prints `SKIPPED <test>: <why>` on stderr (seen with --nocapture)
//! and appends it to the file named by $OVIS_SKIP_LOG, which scripts/run-tests.js (npm test) prints at
//! the end.
#![allow(dead_code)] // each test file uses a different part
use std::io::Write;

/// Records that `test` (of this test binary) did not run here, and why.
pub fn skipped(test: &str, why: &str) {
    let line = format!("SKIPPED {}::{test}: {why}", env!("CARGO_CRATE_NAME"));
    eprintln!("{line}");
    if let Some(path) = std::env::var_os("OVIS_SKIP_LOG") {
        // One short append per line: concurrent tests' lines do not interleave.
        if let Ok(mut f) = std::fs::OpenOptions::new().create(true).append(true).open(path) {
            let _ = f.write_all(format!("{line}\n").as_bytes());
        }
    }
}

/// Whether a CUDA GPU is present. Without one the test is skipped (`skipped`), or fails when
/// OVIS_REQUIRE_GPU=1: on a GPU machine, or on the fake GPU, a missing GPU is an error, not a skip.
pub fn gpu_present(test: &str) -> bool {
    let why = match &ovis_engine::backend::cuda::probe::probe().result {
        Ok(gpus) if !gpus.is_empty() => return true,
        Ok(_) => "no CUDA GPU: the driver loaded but lists no device".to_string(),
        Err(e) => format!("no CUDA GPU: {e}"),
    };
    if std::env::var("OVIS_REQUIRE_GPU").as_deref() == Ok("1") {
        panic!("{test}: OVIS_REQUIRE_GPU=1 but there is {why}");
    }
    skipped(test, &why);
    false
}

//! ovis-engine: serves the stdio protocol (docs/protocol.md). Logs go to stderr; stdout carries frames only.
//!
//! Exit status of `serve`: 0 after `shutdown` or the end of stdin; 2 when the stream is broken (a bad
//! frame, another protocol version, stdin unreadable, bad options); 1 when the worker thread is gone; 75
//! (`EXIT_DEVICE_FAULT`, EX_TEMPFAIL) right after a device fault (an illegal address, an uncorrectable
//! ECC error, …), which the engine reports once as `device_error`: the GPU's CUDA context cannot be
//! used again, so the client starts a new engine (docs/protocol.md, "Device faults").
use ovis_engine::server::{serve_with, FrameWriter, ServeOptions};
use std::io::{BufReader, BufWriter};

const USAGE: &str = "usage: ovis-engine [serve [--max-batch N] [--kv-memory SIZE] | bench ARGS | lora-merge BASE ADAPTER OUT]\n\n  serve   speak the ovis frame protocol on stdin/stdout (default); --max-batch N: generations\n          run together at most (default 8; the rest wait in arrival order); --kv-memory SIZE\n          (e.g. 4G, 512M): what the sessions' KV caches may hold (CPU: default half the memory\n          available at start; GPU: its memory, default 90% of what the model leaves free, and the host\n          copies of evicted caches, at most SIZE and half the host memory); idle sessions are evicted\n          beyond it and brought back or recomputed when they continue\n  bench   measure vision encode, time to first token, prefill and decode (JSON on stdout;\n          `ovis-engine bench --help` for its arguments)\n  lora-merge  write a model directory with a LoRA adapter merged into BASE's weights\n\nThe engine is started by the `ovis` command; see docs/protocol.md.";

fn main() {
    // Freed buffers stay mapped for the next request (alloc_policy.rs: ~1 s of page faults at 896²).
    ovis_engine::alloc_policy::keep_freed_memory();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match args.first().map(String::as_str) {
        None | Some("serve") => match serve_args(args.get(1..).unwrap_or(&[])) {
            Ok(mut opts) => {
                // After a device fault the worker exits the process at once (the fault frame is flushed).
                opts.on_fault = Some(|status| std::process::exit(status));
                let writer = FrameWriter::new(Box::new(BufWriter::new(std::io::stdout())));
                serve_with(BufReader::new(std::io::stdin()), writer, opts)
            }
            Err(msg) => {
                eprintln!("ovis-engine: {msg}\n\n{USAGE}");
                2
            }
        },
        Some("bench") => ovis_engine::bench::main(&args[1..]),
        Some("lora-merge") => ovis_engine::model::lora_merge::main(&args[1..]),
        Some("--version") => {
            eprintln!("ovis-engine {}", env!("CARGO_PKG_VERSION"));
            0
        }
        Some("-h" | "--help") => {
            eprintln!("{USAGE}");
            0
        }
        Some(other) => {
            eprintln!("ovis-engine: unknown command {other:?}\n\n{USAGE}");
            2
        }
    };
    std::process::exit(status);
}

/// `serve`'s options: the batch limit and the KV memory budget.
fn serve_args(args: &[String]) -> Result<ServeOptions, String> {
    let mut opts = ServeOptions::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--max-batch" => {
                let v = it.next().ok_or("--max-batch needs a number")?;
                opts.max_batch = v.parse::<usize>().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| format!("--max-batch must be an integer from 1 to 256, got {v:?}"))?;
            }
            "--kv-memory" => {
                let v = it.next().ok_or("--kv-memory needs a size such as 4G or 512M")?;
                opts.kv_memory = size(v).ok_or_else(|| format!("--kv-memory takes a size such as 4G, 512M or 1073741824 (bytes), got {v:?}"))?;
            }
            other => return Err(format!("unknown serve option {other:?}")),
        }
    }
    Ok(opts)
}

/// 4G, 512M, 64K (binary units) or plain bytes; at least 1 MiB.
fn size(v: &str) -> Option<usize> {
    let (num, unit) = v.trim().split_at(v.trim().find(|c: char| !c.is_ascii_digit()).unwrap_or(v.trim().len()));
    let n: usize = num.parse().ok()?;
    let mult: usize = match unit.to_ascii_uppercase().trim_end_matches(['B', 'I']) {
        "" => 1,
        "K" => 1 << 10,
        "M" => 1 << 20,
        "G" => 1 << 30,
        "T" => 1 << 40,
        _ => return None,
    };
    n.checked_mul(mult).filter(|&b| b >= 1 << 20)
}

//! ovis-engine: serves the stdio protocol (docs/protocol.md). Logs go to stderr; stdout carries frames only.
//!
//! Exit status of `serve`: 0 after `shutdown` or the end of stdin; 2 when the stream is broken (a bad
//! frame, another protocol version, stdin unreadable); 1 when the worker thread is gone; 75
//! (`EXIT_DEVICE_FAULT`, EX_TEMPFAIL) right after a device fault (an illegal address, an uncorrectable
//! ECC error, …), which the engine reports once as `device_error`: the GPU's CUDA context cannot be
//! used again, so the client starts a new engine (docs/protocol.md, "Device faults").
use ovis_engine::server::{serve_with, FrameWriter};
use std::io::{BufReader, BufWriter};

const USAGE: &str = "usage: ovis-engine [serve | bench ARGS]\n\n  serve   speak the ovis frame protocol on stdin/stdout (default)\n  bench   measure vision encode, time to first token, prefill and decode (JSON on stdout;\n          `ovis-engine bench --help` for its arguments)\n\nThe engine is started by the `ovis` command; see docs/protocol.md.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match args.first().map(String::as_str) {
        None | Some("serve") => {
            let writer = FrameWriter::new(Box::new(BufWriter::new(std::io::stdout())));
            // After a device fault the worker exits the process at once (the fault frame is flushed).
            serve_with(BufReader::new(std::io::stdin()), writer, Some(|status| std::process::exit(status)))
        }
        Some("bench") => ovis_engine::bench::main(&args[1..]),
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

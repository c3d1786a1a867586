//! ovis-engine: serves the stdio protocol (docs/protocol.md). Logs go to stderr; stdout carries frames only.
use ovis_engine::server::{serve, FrameWriter};
use std::io::{BufReader, BufWriter};

const USAGE: &str = "usage: ovis-engine [serve | bench ARGS]\n\n  serve   speak the ovis frame protocol on stdin/stdout (default)\n  bench   measure vision encode, time to first token, prefill and decode (JSON on stdout;\n          `ovis-engine bench --help` for its arguments)\n\nThe engine is started by the `ovis` command; see docs/protocol.md.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match args.first().map(String::as_str) {
        None | Some("serve") => {
            let writer = FrameWriter::new(Box::new(BufWriter::new(std::io::stdout())));
            serve(BufReader::new(std::io::stdin()), writer)
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

//! ovis-engine: serves the stdio protocol (docs/protocol.md). Logs go to stderr; stdout carries frames only.
use ovis_engine::generate::batch::DEFAULT_MAX_BATCH;
use ovis_engine::server::{serve_with, FrameWriter};
use std::io::{BufReader, BufWriter};

const USAGE: &str = "usage: ovis-engine [serve [--max-batch N] | bench ARGS]\n\n  serve   speak the ovis frame protocol on stdin/stdout (default); --max-batch N: generations\n          run together at most (default 8; the rest wait in arrival order)\n  bench   measure vision encode, time to first token, prefill and decode (JSON on stdout;\n          `ovis-engine bench --help` for its arguments)\n\nThe engine is started by the `ovis` command; see docs/protocol.md.";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let status = match args.first().map(String::as_str) {
        None | Some("serve") => match serve_args(args.get(1..).unwrap_or(&[])) {
            Ok(max_batch) => {
                let writer = FrameWriter::new(Box::new(BufWriter::new(std::io::stdout())));
                serve_with(BufReader::new(std::io::stdin()), writer, max_batch)
            }
            Err(msg) => {
                eprintln!("ovis-engine: {msg}\n\n{USAGE}");
                2
            }
        },
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

/// `serve`'s options: the batch limit.
fn serve_args(args: &[String]) -> Result<usize, String> {
    let mut max_batch = DEFAULT_MAX_BATCH;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--max-batch" => {
                let v = it.next().ok_or("--max-batch needs a number")?;
                max_batch = v.parse::<usize>().ok().filter(|n| (1..=256).contains(n)).ok_or_else(|| format!("--max-batch must be an integer from 1 to 256, got {v:?}"))?;
            }
            other => return Err(format!("unknown serve option {other:?}")),
        }
    }
    Ok(max_batch)
}

//! The request loop: a reader (this thread) parses frames and handles cancellation at once;
//! a worker thread runs loads and generations in arrival order (on the CPU, generations together:
//! continuous batching, up to `max_batch` at once).
mod worker;
pub mod writer;

use crate::error::EXIT_DEVICE_FAULT;
use crate::protocol::{kind, parse_header, read_frame, Hello, HelloOk, IdOnly, ReadError, PROTOCOL_VERSION};
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use worker::{Job, Worker};
pub use writer::FrameWriter;

/// Cancellation flags of queued and running requests, by request id.
pub type CancelMap = Arc<Mutex<HashMap<u64, Arc<AtomicBool>>>>;

/// How the engine schedules generations (`ovis-engine serve --max-batch N --kv-memory SIZE`).
#[derive(Debug, Clone, Copy)]
pub struct ServeOptions {
    /// Generations running together at most (the rest wait in arrival order).
    pub max_batch: usize,
    /// Bytes the sessions' KV caches may hold (host memory on the CPU, device memory on a GPU); idle
    /// ones are evicted beyond it. KV_MEMORY_AUTO: sized from the device when a model is loaded.
    pub kv_memory: usize,
    /// Called from the worker with EXIT_DEVICE_FAULT right after a device fault was reported (the
    /// engine binary exits there at once, instead of when the client next writes).
    pub on_fault: Option<fn(i32)>,
}

/// `kv_memory` when none is given: on the CPU half the memory available at load
/// (`generate::batch::default_kv_budget`), on a GPU 90 % of the device memory left after the weights
/// (`CudaBatchModel::default_kv_budget`).
pub const KV_MEMORY_AUTO: usize = 0;

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions { max_batch: crate::generate::batch::DEFAULT_MAX_BATCH, kv_memory: KV_MEMORY_AUTO, on_fault: None }
    }
}

/// Serves frames from `input` until EOF, `shutdown`, an unrecoverable frame or a device fault; returns
/// the exit status (docs/protocol.md): 0, 2 for a broken stream, EXIT_DEVICE_FAULT after a device fault
/// (reported once as `device_error`; the worker takes no further request).
pub fn serve(input: impl Read, writer: FrameWriter) -> i32 {
    serve_with(input, writer, ServeOptions::default())
}

/// `serve` with scheduling options.
pub fn serve_with(mut input: impl Read, writer: FrameWriter, opts: ServeOptions) -> i32 {
    let cancels: CancelMap = Arc::new(Mutex::new(HashMap::new()));
    let (tx, rx) = mpsc::channel::<Job>();
    let faulted = Arc::new(AtomicBool::new(false));
    let worker = Worker::new(writer.clone(), Arc::clone(&cancels), opts, Arc::clone(&faulted));
    let handle = std::thread::Builder::new().name("ovis-worker".into()).spawn(move || worker.run(rx)).expect("spawn worker");
    let mut greeted = false;
    let status = loop {
        let frame = match read_frame(&mut input) {
            Ok(f) => f,
            Err(ReadError::Eof) => break 0,
            Err(ReadError::Fatal(msg)) => {
                writer.error(None, "bad_frame", msg);
                break 2;
            }
            Err(ReadError::BadHeader { kind, message }) => {
                writer.error(None, "bad_header", format!("frame kind 0x{kind:02x}: {message}"));
                continue;
            }
            Err(ReadError::Io(e)) => {
                eprintln!("ovis-engine: cannot read stdin: {e}");
                break 2;
            }
        };
        if !greeted && frame.kind != kind::HELLO {
            writer.error(None, "bad_request", format!("the first frame must be hello (0x01), got kind 0x{:02x}", frame.kind));
            continue;
        }
        match frame.kind {
            kind::HELLO => match parse_header::<Hello>(&frame) {
                Ok(h) if h.protocol == PROTOCOL_VERSION => {
                    greeted = true;
                    let (backend, device) = crate::backend::describe_default();
                    writer.send_msg(kind::HELLO_OK, &HelloOk { protocol: PROTOCOL_VERSION, engine: env!("CARGO_PKG_VERSION").into(), backend, device, threads: rayon::current_num_threads() });
                }
                Ok(h) => {
                    writer.error(None, "version_mismatch", format!("the client speaks protocol {}, this engine speaks {PROTOCOL_VERSION}: reinstall ovis so both parts match", h.protocol));
                    break 2;
                }
                Err(e) => writer.error(None, "bad_header", e),
            },
            kind::CANCEL => match parse_header::<IdOnly>(&frame) {
                Ok(c) => {
                    if let Some(flag) = cancels.lock().unwrap().get(&c.id) {
                        flag.store(true, Ordering::SeqCst);
                    }
                }
                Err(e) => writer.error(None, "bad_header", e),
            },
            kind::SHUTDOWN => break 0,
            kind::LOAD_MODEL | kind::GENERATE | kind::CLOSE_SESSION => {
                if kind::GENERATE == frame.kind {
                    // Register before queueing so a cancel that overtakes the queue still lands.
                    if let Ok(g) = parse_header::<IdOnly>(&frame) {
                        cancels.lock().unwrap().insert(g.id, Arc::new(AtomicBool::new(false)));
                    }
                }
                if tx.send(Job::Frame(frame)).is_err() {
                    break 1;
                }
            }
            other => writer.error(None, "unknown_kind", format!("unknown frame kind 0x{other:02x}; this engine speaks protocol {PROTOCOL_VERSION}")),
        }
    };
    drop(tx);
    let _ = handle.join();
    if faulted.load(Ordering::SeqCst) {
        EXIT_DEVICE_FAULT
    } else {
        status
    }
}

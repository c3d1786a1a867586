//! The engine's only path to stdout: whole frames, serialised by a mutex, flushed at once.
use crate::protocol::{frame_of, kind, ErrorMsg, Frame};
use std::io::Write;
use std::sync::{Arc, Mutex};

#[derive(Clone)]
pub struct FrameWriter {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl FrameWriter {
    pub fn new(out: Box<dyn Write + Send>) -> Self {
        FrameWriter { out: Arc::new(Mutex::new(out)) }
    }

    /// Writes one frame; a closed stdout (the client went away) is reported to stderr only.
    pub fn send(&self, frame: &Frame) {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = frame.write_to(&mut *out) {
            eprintln!("ovis-engine: cannot write to stdout: {e}");
        }
    }

    pub fn send_msg<T: serde::Serialize>(&self, k: u8, msg: &T) {
        self.send(&frame_of(k, msg, Vec::new()));
    }

    pub fn error(&self, id: Option<u64>, code: &str, message: impl Into<String>) {
        let message = message.into();
        eprintln!("ovis-engine: error {code} (request {id:?}): {message}");
        self.send_msg(kind::ERROR, &ErrorMsg { id, code: code.into(), message });
    }
}

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

    /// Writes one frame; false when stdout is closed (the client went away; reported on stderr).
    pub fn send(&self, frame: &Frame) -> bool {
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        match frame.write_to(&mut *out) {
            Ok(()) => true,
            Err(e) => {
                eprintln!("ovis-engine: cannot write to stdout: {e}");
                false
            }
        }
    }

    pub fn send_msg<T: serde::Serialize>(&self, k: u8, msg: &T) -> bool {
        self.send(&frame_of(k, msg, Vec::new()))
    }

    pub fn error(&self, id: Option<u64>, code: &str, message: impl Into<String>) {
        let message = message.into();
        eprintln!("ovis-engine: error {code} (request {id:?}): {message}");
        self.send_msg(kind::ERROR, &ErrorMsg { id, code: code.into(), message });
    }
}

//! The wire contract with the CLI (docs/protocol.md): frames and typed message headers.
pub mod frame;
pub mod messages;

pub use frame::{read_frame, Frame, ReadError, MAX_FRAME};
pub use messages::*;

/// A frame whose header is `msg` serialised compactly, with a raw body.
pub fn frame_of<T: serde::Serialize>(kind: u8, msg: &T, body: Vec<u8>) -> Frame {
    let header = serde_json::to_vec(msg).expect("message headers always serialise");
    Frame::new(kind, header, body)
}

/// Parses a frame's header as message `T`; the error text names the kind and the problem.
/// The header must be a JSON object (serde's derived structs would also take an array of the
/// field values; nested objects are checked by the message types, see messages.rs).
pub fn parse_header<T: serde::de::DeserializeOwned>(frame: &Frame) -> Result<T, String> {
    let fail = |e: &dyn std::fmt::Display| format!("header of frame kind 0x{:02x}: {e}", frame.kind);
    let value: serde_json::Value = serde_json::from_slice(&frame.header).map_err(|e| fail(&e))?;
    if !value.is_object() {
        return Err(fail(&format!("the header must be a JSON object, got {}", json_kind(&value))));
    }
    serde_json::from_slice(&frame.header).map_err(|e| fail(&e))
}

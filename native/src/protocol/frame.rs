//! Frames: u32 LE length (kind + payload), u8 kind, u32 LE header length, JSON header, raw body.
//! Hand-written because the format is ours and tiny; see docs/protocol.md.
use std::io::{self, Read, Write};

/// Largest frame accepted (1 GiB): a 1792² image is 38 MB of f32 pixels; anything near 1 GiB is garbage.
pub const MAX_FRAME: usize = 1 << 30;

#[derive(Debug, Clone, PartialEq)]
pub struct Frame {
    pub kind: u8,
    /// Raw JSON header bytes (one object).
    pub header: Vec<u8>,
    pub body: Vec<u8>,
}

#[derive(Debug)]
pub enum ReadError {
    /// The stream ended cleanly between frames.
    Eof,
    /// The stream cannot be resynchronised (bad length, ended inside a frame).
    Fatal(String),
    /// The frame's length was fine but its header length was not: the frame was skipped.
    BadHeader { kind: u8, message: String },
    Io(io::Error),
}

impl Frame {
    pub fn new(kind: u8, header: Vec<u8>, body: Vec<u8>) -> Self {
        Frame { kind, header, body }
    }

    /// The whole frame as it travels.
    pub fn encode(&self) -> Vec<u8> {
        let len = 1 + 4 + self.header.len() + self.body.len();
        let mut out = Vec::with_capacity(4 + len);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.push(self.kind);
        out.extend_from_slice(&(self.header.len() as u32).to_le_bytes());
        out.extend_from_slice(&self.header);
        out.extend_from_slice(&self.body);
        out
    }

    pub fn write_to(&self, w: &mut impl Write) -> io::Result<()> {
        w.write_all(&self.encode())?;
        w.flush()
    }
}

/// Fills `buf` completely; Ok(false) if the stream ended before the first byte.
fn read_full(r: &mut impl Read, buf: &mut [u8]) -> Result<bool, ReadError> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => {
                return if filled == 0 {
                    Ok(false)
                } else {
                    Err(ReadError::Fatal(format!("stream ended inside a frame ({filled} of {} bytes)", buf.len())))
                }
            }
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReadError::Io(e)),
        }
    }
    Ok(true)
}

pub fn read_frame(r: &mut impl Read) -> Result<Frame, ReadError> {
    let mut len = [0u8; 4];
    if !read_full(r, &mut len)? {
        return Err(ReadError::Eof);
    }
    let len = u32::from_le_bytes(len) as usize;
    if len == 0 || len > MAX_FRAME {
        return Err(ReadError::Fatal(format!("frame length {len} is outside 1..={MAX_FRAME}")));
    }
    // Grow with the bytes that actually arrive: a garbage length near the limit costs nothing
    // until that much data comes.
    let mut payload = Vec::with_capacity(len.min(1 << 20));
    match r.take(len as u64).read_to_end(&mut payload) {
        Ok(n) if n == len => decode_payload(payload),
        Ok(n) => Err(ReadError::Fatal(format!("stream ended inside a frame ({n} of {len} bytes)"))),
        Err(e) => Err(ReadError::Io(e)),
    }
}

/// Splits kind + payload (everything after the length) into a frame.
pub fn decode_payload(mut payload: Vec<u8>) -> Result<Frame, ReadError> {
    let kind = payload[0];
    if payload.len() < 5 {
        return Err(ReadError::BadHeader { kind, message: format!("frame of {} bytes has no header length", payload.len()) });
    }
    let hlen = u32::from_le_bytes(payload[1..5].try_into().unwrap()) as usize;
    if hlen > payload.len() - 5 {
        return Err(ReadError::BadHeader { kind, message: format!("header length {hlen} exceeds the frame ({} bytes)", payload.len()) });
    }
    let body = payload.split_off(5 + hlen);
    let header = payload[5..].to_vec();
    Ok(Frame { kind, header, body })
}

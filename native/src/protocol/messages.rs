//! Typed headers of every message kind (docs/protocol.md). Field order = key order on the wire.
use serde::{Deserialize, Serialize};

pub const PROTOCOL_VERSION: u32 = 1;

pub mod kind {
    pub const HELLO: u8 = 0x01;
    pub const LOAD_MODEL: u8 = 0x02;
    pub const GENERATE: u8 = 0x03;
    pub const CANCEL: u8 = 0x04;
    pub const CLOSE_SESSION: u8 = 0x05;
    pub const SHUTDOWN: u8 = 0x06;
    pub const HELLO_OK: u8 = 0x81;
    pub const MODEL_LOADED: u8 = 0x82;
    pub const TOKEN: u8 = 0x83;
    pub const DONE: u8 = 0x84;
    pub const SESSION_CLOSED: u8 = 0x85;
    pub const PROGRESS: u8 = 0x86;
    pub const ERROR: u8 = 0x8f;
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub protocol: u32,
    pub client: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct HelloOk {
    pub protocol: u32,
    pub engine: String,
    pub backend: String,
    pub device: String,
    pub threads: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LoadModel {
    pub id: u64,
    pub model_dir: String,
    #[serde(default = "default_device")]
    pub device: String,
}

fn default_device() -> String {
    "auto".into()
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelLoaded {
    pub id: u64,
    pub info: serde_json::Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MediaSpec {
    pub kind: String,
    pub grid: [usize; 3],
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Sampling {
    #[serde(default)]
    pub temperature: f32,
    #[serde(default)]
    pub top_k: usize,
    #[serde(default = "one")]
    pub top_p: f32,
    #[serde(default = "one")]
    pub repetition_penalty: f32,
    #[serde(default)]
    pub seed: u64,
}

fn one() -> f32 {
    1.0
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generate {
    pub id: u64,
    pub session: String,
    #[serde(default)]
    pub keep: usize,
    pub n_ids: usize,
    #[serde(default)]
    pub media: Vec<MediaSpec>,
    pub max_new_tokens: usize,
    pub sampling: Sampling,
    #[serde(default)]
    pub stop_ids: Vec<u32>,
    #[serde(default)]
    pub top_logprobs: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IdOnly {
    pub id: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SessionRef {
    pub session: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Token {
    pub id: u64,
    pub token: u32,
    pub logprob: f32,
    pub top: Vec<(u32, f32)>,
}

/// Where a request is before its first token: `vision` (done/total encoder layers) or `prefill`
/// (done/total new positions). Sent at each step, so a client can show what a long wait is doing.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Progress {
    pub id: u64,
    pub phase: String,
    pub done: usize,
    pub total: usize,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Timings {
    pub vision_ms: f64,
    pub prefill_ms: f64,
    pub first_token_ms: f64,
    pub decode_ms: f64,
    pub total_ms: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Done {
    pub id: u64,
    pub finish_reason: String,
    pub prompt_tokens: usize,
    pub cached_tokens: usize,
    pub completion_tokens: usize,
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorMsg {
    pub id: Option<u64>,
    pub code: String,
    pub message: String,
}

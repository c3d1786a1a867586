//! Typed headers of every message kind (docs/protocol.md). Field order = key order on the wire.
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub const PROTOCOL_VERSION: u32 = 1;

/// A sampling temperature below this is greedy, the same as 0: the header is read with temperature
/// 0, so every backend's sampler takes its greedy path (logits / T overflows f32 for T near 1e-38).
pub const GREEDY_TEMPERATURE: f32 = 1e-5;

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
    /// A PEFT LoRA adapter directory merged into the weights at load (docs/protocol.md); absent: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<String>,
    /// Arithmetic of the CPU's compute-bound products: "f32" (default, exact) or "bf16" (docs/protocol.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub precision: Option<String>,
    /// How the decoder's linear layers are held: "bf16" (as stored; absent means this), "int8" or
    /// "int4" (quantized at load; CPU only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub weights: Option<String>,
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
    #[serde(default, deserialize_with = "temperature")]
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

/// A temperature as sent, except that one below GREEDY_TEMPERATURE (and above 0) reads as 0.
fn temperature<'de, D: Deserializer<'de>>(d: D) -> Result<f32, D::Error> {
    let t = f32::deserialize(d)?;
    Ok(if t > 0.0 && t < GREEDY_TEMPERATURE { 0.0 } else { t })
}

/// What a JSON value is, for error messages.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "a boolean",
        serde_json::Value::Number(_) => "a number",
        serde_json::Value::String(_) => "a string",
        serde_json::Value::Array(_) => "an array",
        serde_json::Value::Object(_) => "an object",
    }
}

/// `T` from a JSON object only: serde's derived structs also accept a JSON array of the field
/// values in order, which the protocol does not (docs/protocol.md documents objects).
fn object_named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, name: &str) -> Result<T, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    if !v.is_object() {
        return Err(D::Error::custom(format!("{name} must be a JSON object, got {}", json_kind(&v))));
    }
    T::deserialize(v).map_err(|e| D::Error::custom(format!("{name}: {e}")))
}

/// A JSON array of objects only (see `object_named`).
fn objects_named<'de, D: Deserializer<'de>, T: DeserializeOwned>(d: D, name: &str) -> Result<Vec<T>, D::Error> {
    let values = Vec::<serde_json::Value>::deserialize(d)?;
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| {
            if !v.is_object() {
                return Err(D::Error::custom(format!("{name}[{i}] must be a JSON object, got {}", json_kind(&v))));
            }
            T::deserialize(v).map_err(|e| D::Error::custom(format!("{name}[{i}]: {e}")))
        })
        .collect()
}

fn sampling_object<'de, D: Deserializer<'de>>(d: D) -> Result<Sampling, D::Error> {
    object_named(d, "sampling")
}

fn media_objects<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<MediaSpec>, D::Error> {
    objects_named(d, "media")
}

fn timings_object<'de, D: Deserializer<'de>>(d: D) -> Result<Timings, D::Error> {
    object_named(d, "timings")
}

/// A log-probability as it goes on the wire: always a JSON number (serde_json writes a non-finite
/// float as `null`). NaN and ±∞ cannot arise from validated sampling values; if one does (a bug),
/// it is sent as f32::MIN (−3.4028235e38), the lowest log-probability an f32 holds, and logged.
pub fn wire_logprob(v: f32) -> f32 {
    if v.is_finite() {
        v
    } else {
        eprintln!("ovis-engine: a non-finite log-probability ({v}) is sent as {:e}; please report this", f32::MIN);
        f32::MIN
    }
}

fn finite_logprob<S: Serializer>(v: &f32, s: S) -> Result<S::Ok, S::Error> {
    wire_logprob(*v).serialize(s)
}

fn finite_top<S: Serializer>(top: &[(u32, f32)], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(top.iter().map(|&(id, v)| (id, wire_logprob(v))))
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Generate {
    pub id: u64,
    pub session: String,
    #[serde(default)]
    pub keep: usize,
    pub n_ids: usize,
    #[serde(default, deserialize_with = "media_objects")]
    pub media: Vec<MediaSpec>,
    pub max_new_tokens: usize,
    #[serde(deserialize_with = "sampling_object")]
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
    #[serde(serialize_with = "finite_logprob")]
    pub logprob: f32,
    #[serde(serialize_with = "finite_top")]
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
    /// `vision` only: milliseconds since the encode began, measured in the engine (no transport), so a
    /// client can extrapolate the remaining layers from the first ones. Absent on `prefill`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub elapsed_ms: Option<f64>,
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
    #[serde(deserialize_with = "timings_object")]
    pub timings: Timings,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ErrorMsg {
    pub id: Option<u64>,
    pub code: String,
    pub message: String,
}

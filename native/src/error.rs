//! Engine errors: every failure becomes an error frame with a stable code (see docs/protocol.md).
use thiserror::Error;

#[derive(Debug, Error)]
pub enum EngineError {
    /// Missing, corrupt or mismatched model files: the CLI maps it to its model-error exit code.
    #[error("{0}")]
    Model(String),
    /// A well-formed frame whose request makes no sense (bad ids, unknown session, bad sampling values).
    #[error("{0}")]
    BadRequest(String),
    /// A request that needs a model before one was loaded.
    #[error("no model is loaded: send a load_model request first")]
    NoModel,
    /// The sequence would exceed the model's context window.
    #[error("{0}")]
    ContextOverflow(String),
    /// The requested device cannot be used, or ran out of memory: the engine keeps serving.
    #[error("{0}")]
    Device(String),
    /// The GPU faulted (an illegal address, an uncorrectable ECC error, …): its CUDA context is lost and
    /// every later call on it fails. Reported once as `device_error`, then the engine exits with
    /// `EXIT_DEVICE_FAULT` so that the client starts a new one (docs/protocol.md, "Device faults").
    #[error("{0}")]
    DeviceFault(String),
    #[error("{0}")]
    Internal(String),
}

impl EngineError {
    /// The wire code of this error (docs/protocol.md, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            EngineError::Model(_) => "model_error",
            EngineError::BadRequest(_) => "bad_request",
            EngineError::NoModel => "no_model",
            EngineError::ContextOverflow(_) => "context_overflow",
            EngineError::Device(_) | EngineError::DeviceFault(_) => "device_error",
            EngineError::Internal(_) => "internal",
        }
    }
}

/// The engine's exit status after a device fault (sysexits.h EX_TEMPFAIL: a temporary failure, to be
/// retried): the CUDA context cannot be used again, so the engine reports the fault once and exits,
/// and the client starts a fresh engine (docs/protocol.md, "Device faults").
pub const EXIT_DEVICE_FAULT: i32 = 75;

pub type Result<T> = std::result::Result<T, EngineError>;

pub fn model_err(msg: impl Into<String>) -> EngineError {
    EngineError::Model(msg.into())
}

pub fn bad_request(msg: impl Into<String>) -> EngineError {
    EngineError::BadRequest(msg.into())
}

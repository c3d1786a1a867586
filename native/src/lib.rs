//! ovis-engine: the Ovis2.5 engine library (the binary in main.rs serves it over the stdio protocol).
pub mod alloc_policy;
pub mod backend;
pub mod bench;
pub mod error;
pub mod generate;
pub mod model;
pub mod protocol;
pub mod server;

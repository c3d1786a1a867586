pub mod config;
pub mod merge;
pub mod ovis;
pub mod source;
pub mod synthetic;
pub mod vision;
pub mod weights;

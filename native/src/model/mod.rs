pub mod config;
pub mod merge;
pub mod ovis;
pub mod qwen3;
pub mod source;
pub mod vision;
pub mod visual_head;
pub mod weights;

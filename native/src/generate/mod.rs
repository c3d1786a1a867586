pub mod batch;
pub mod cpu_runner;
pub mod kv_cache;
pub mod run;
pub mod sampler;
pub mod session;
pub mod step_budget;
pub mod validate;

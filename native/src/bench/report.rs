//! What `ovis-engine bench` writes on stdout: one JSON object per line, each written as soon as it is
//! known so that a reader (src/cli/bench.ts) can show a figure the moment it is measured:
//!   {"type":"plan",…}     what will be measured (model, backend, image sides with their patch and
//!                          position counts, repeats…), before the weights are loaded
//!   {"type":"figure","figure":"vision_encode"|"time_to_first_token"|"prefill"|"decode"|"peak_memory"|"floor",…}
//!   {"type":"figure","figure":"concurrency","streams",decode:{…},with_prefill:{…},ratios:{aggregate_vs_one,gap_p99_vs_step}}  (with --concurrency)
//!   {"type":"figure","figure":"profile","stages":[{stage,ms,calls,gflop_per_s?,percent_of_peak?}],…}  (--profile)
//!   {"type":"report",…}   every figure in one object, last (what `ovis bench --json` prints)
use super::args::{BenchArgs, Plan};
use super::measure::image_prompt;
use crate::model::config::LlmConfig;
use serde_json::{json, Value};
use std::io::Write;

/// The decode figure's prompt length: decode steps start after a prompt of this many text tokens.
pub(super) const DECODE_CONTEXT: usize = 32;

/// Writes one line (`kind` added to `body`) and flushes it, so a pipe reader sees it now.
fn emit(kind: &str, mut body: Value) {
    body["type"] = json!(kind);
    let mut out = std::io::stdout().lock();
    // A closed stdout (the reader quit) must not kill the measurement halfway with a panic.
    let _ = writeln!(out, "{body}").and_then(|_| out.flush());
}

/// Collects the figures into the final report while writing each one as its own line.
pub(super) struct Report {
    body: Value,
    weight_bytes_per_token: u64,
}

impl Report {
    /// Writes the plan line and starts the report.
    pub fn start(args: &BenchArgs, plan: &Plan, backend: &str, device: &str, llm: &LlmConfig) -> Report {
        let images: Vec<Value> = plan.images.iter().map(|&side| {
            let patches = (side / 16) * (side / 16);
            json!({ "side": side, "patches": patches, "positions": image_prompt(patches / 4).len() })
        }).collect();
        let mut body = json!({
            "model": args.model.clone().unwrap_or_else(|| format!("synthetic {}", args.synthetic.clone().unwrap_or_default())),
            "backend": backend,
            "device": device,
            "threads": rayon::current_num_threads(),
            "images": images,
            "prompt_tokens": plan.prompt_tokens,
            "decode_tokens": plan.decode_tokens,
            "decode_context": DECODE_CONTEXT,
            "repeats": plan.repeats,
            "warmup": plan.warmup,
            "full": !plan.encode_in_first_token_runs,
            "vision_encode_in_first_token_runs": plan.encode_in_first_token_runs,
            "version": env!("CARGO_PKG_VERSION"),
            "concurrency": plan.concurrency,
            "kernels": crate::backend::cpu::precision::kernels_json(args.precision),
            "weights": args.weights.name(),
            // With --profile, the stages its figure may list (so a table can size its label column).
            "profile_stages": if plan.profile { crate::backend::cpu::profile::STAGES.iter().map(|s| s.name()).collect() } else { Vec::new() },
        });
        if !plan.concurrency.is_empty() {
            body["long_prompt"] = json!(plan.prompt_tokens.max(512));
            // issue 10 (CPU): 8 streams ≥ 5× one stream's tokens/s; p99 gap beside a 2,000-token
            // prefill ≤ 3× the streams' step without it
            body["concurrency_targets"] = json!({ "aggregate_vs_one_at_8": 5.0, "gap_p99_vs_step": 3.0 });
        }
        emit("plan", body.clone());
        Report { body, weight_bytes_per_token: decode_weight_bytes(llm) }
    }

    /// The decoder's weight mode and decode kernel, known once the model is built; a quantized
    /// model's floor counts the bytes it reads per token (its linear layers and output layer).
    pub fn weights(&mut self, model: &crate::backend::cpu::model::OvisModel) {
        let info = model.info("", "");
        self.body["weights"] = info["weights"].clone();
        self.body["weights_kernel"] = info["weights_kernel"].clone();
        if model.llm.weight_mode() != crate::backend::cpu::quant::WeightMode::Bf16 {
            self.weight_bytes_per_token = model.llm.linear_bytes() as u64;
        }
        emit("figure", json!({ "figure": "weights", "weights": info["weights"], "kernel": info["weights_kernel"], "linear_bytes": info["linear_bytes"] }));
    }

    /// `--quality`: the quantized decoder against bf16 (measure_quality.rs).
    pub fn quality(&mut self, cosine: f64, agree: usize, of: usize, prompt: usize) {
        let v = json!({ "logits_cosine": cosine, "greedy_agree": agree, "greedy_of": of, "prompt_tokens": prompt });
        self.figure("quality", v);
    }

    fn image(&mut self, side: usize) -> &mut Value {
        let images = self.body["images"].as_array_mut().expect("images is an array");
        images.iter_mut().find(|i| i["side"] == side).expect("a planned side")
    }

    pub fn vision_encode(&mut self, side: usize, ms: f64) {
        let img = self.image(side);
        img["vision_encode_ms"] = json!(ms);
        emit("figure", json!({ "figure": "vision_encode", "side": side, "patches": img["patches"], "ms": ms }));
    }

    pub fn time_to_first_token(&mut self, side: usize, ms: f64) {
        let img = self.image(side);
        img["time_to_first_token_ms"] = json!(ms);
        emit("figure", json!({ "figure": "time_to_first_token", "side": side, "positions": img["positions"], "ms": ms }));
    }

    pub fn prefill(&mut self, tokens: usize, ms: f64) {
        let v = json!({ "tokens": tokens, "ms": ms, "tokens_per_s": tokens as f64 / ms * 1e3 });
        self.figure("prefill", v);
    }

    /// `ms_per_token`: the median decode step after a DECODE_CONTEXT-token prompt.
    pub fn decode(&mut self, ms_per_token: f64, tokens: usize) {
        let v = json!({ "ms_per_token": ms_per_token, "tokens_per_s": 1e3 / ms_per_token, "context": DECODE_CONTEXT, "tokens": tokens });
        self.figure("decode", v);
    }

    pub fn peak_memory(&mut self, bytes: u64) {
        self.body["peak_memory_bytes"] = json!(bytes);
        emit("figure", json!({ "figure": "peak_memory", "bytes": bytes }));
    }

    /// `read_bw`: bytes/s the floor divides by (CPU: measured reads; GPU: device copy, read + written).
    pub fn floor(&mut self, read_bw: f64, copy_bw: f64) {
        let bytes = self.weight_bytes_per_token;
        let v = json!({ "weight_bytes_per_token": bytes, "read_bandwidth_bytes_per_s": read_bw, "copy_bandwidth_bytes_per_s": copy_bw, "decode_ms_per_token": bytes as f64 / read_bw * 1e3 });
        self.figure("floor", v);
    }

    /// A figure whose report key is its name.
    fn figure(&mut self, name: &str, v: Value) {
        self.body[name] = v.clone();
        let mut line = json!({ "figure": name });
        line.as_object_mut().expect("object").extend(v.as_object().expect("object").clone());
        emit("figure", line);
    }

    /// The stage profile (`--profile`): its report key is "profile".
    pub fn profile(&mut self, v: serde_json::Value) {
        self.figure("profile", v);
    }

    /// One stream count of the continuous-batching sweep: decoding alone, and while a long prompt
    /// prefills, with their ratios against issue 10's targets (`CONCURRENCY_TARGETS`).
    pub fn concurrency(&mut self, streams: usize, alone: Value, with_prefill: Value, ratios: Value) {
        let v = json!({ "streams": streams, "decode": alone, "with_prefill": with_prefill, "ratios": ratios });
        let runs = self.body.as_object_mut().expect("object").entry("concurrency_runs").or_insert_with(|| json!([]));
        runs.as_array_mut().expect("array").push(v.clone());
        let mut line = json!({ "figure": "concurrency" });
        line.as_object_mut().expect("object").extend(v.as_object().expect("object").clone());
        emit("figure", line);
    }

    /// Writes the report line (every figure, and the plan's keys).
    pub fn finish(self) {
        emit("report", self.body);
    }
}

/// Bytes a decode step must read (model-spec.md §9): every decoder layer, the final norm, and the
/// output matrix (the tied embedding for 2B); the embedding lookup itself is one row.
fn decode_weight_bytes(c: &LlmConfig) -> u64 {
    let per_layer = (c.heads * c.head_dim * c.hidden * 2 + c.kv_heads * c.head_dim * c.hidden * 2 + 3 * c.hidden * c.intermediate + 2 * c.hidden + 2 * c.head_dim) as u64;
    2 * (per_layer * c.layers as u64 + c.hidden as u64 + (c.vocab * c.hidden) as u64)
}

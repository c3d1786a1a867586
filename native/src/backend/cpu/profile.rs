//! Stage timers for `ovis-engine bench --profile`: wall time and floating-point work per stage of the
//! CPU path (patchify, ViT GEMMs, ViT attention, …), so the next bottleneck is visible.
//!
//! Off unless the bench turns it on: then `time` costs one relaxed atomic load and the call. When on,
//! each timed call adds its wall time (ns) and its FLOPs (2 per multiply-add) to process-wide atomic
//! counters. Stages must not nest (a nested stage's time would be counted twice).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    /// Patch embedding product and the resized position table added to it.
    Patchify,
    /// The ViT's q/k/v/out and MLP products (bias in the epilogue).
    VitGemm,
    /// The ViT's bidirectional per-segment attention (scores, softmax, P·V).
    VitAttention,
    /// LayerNorms, rotary, GELU and residual adds of the ViT.
    VitElementwise,
    /// The visual head's Linear [N/4, 4D] · [V−4, 4D]ᵀ.
    HeadGemm,
    /// The visual head's LayerNorm and softmax over the visual vocabulary.
    HeadNormSoftmax,
    /// Probabilities · VTE → LLM embeddings.
    Vte,
    /// The decoder forward over a prompt (all positions at once).
    Prefill,
    /// One-position decoder forwards (GEMV-bound: every weight read once per step).
    Decode,
    /// Choosing the next token from the logits.
    Sampling,
}

pub const STAGES: [Stage; 10] = [
    Stage::Patchify,
    Stage::VitGemm,
    Stage::VitAttention,
    Stage::VitElementwise,
    Stage::HeadGemm,
    Stage::HeadNormSoftmax,
    Stage::Vte,
    Stage::Prefill,
    Stage::Decode,
    Stage::Sampling,
];

impl Stage {
    pub fn name(self) -> &'static str {
        match self {
            Stage::Patchify => "patchify",
            Stage::VitGemm => "vit_gemm",
            Stage::VitAttention => "vit_attention",
            Stage::VitElementwise => "vit_elementwise",
            Stage::HeadGemm => "head_gemm",
            Stage::HeadNormSoftmax => "head_norm_softmax",
            Stage::Vte => "vte",
            Stage::Prefill => "prefill",
            Stage::Decode => "decode",
            Stage::Sampling => "sampling",
        }
    }
}

static ON: AtomicBool = AtomicBool::new(false);
static NS: [AtomicU64; STAGES.len()] = [const { AtomicU64::new(0) }; STAGES.len()];
static FLOP: [AtomicU64; STAGES.len()] = [const { AtomicU64::new(0) }; STAGES.len()];
static CALLS: [AtomicU64; STAGES.len()] = [const { AtomicU64::new(0) }; STAGES.len()];

/// Turns the timers on (zeroing them) or off.
pub fn set_enabled(on: bool) {
    if on {
        for i in 0..STAGES.len() {
            NS[i].store(0, Relaxed);
            FLOP[i].store(0, Relaxed);
            CALLS[i].store(0, Relaxed);
        }
    }
    ON.store(on, Relaxed);
}

pub fn enabled() -> bool {
    ON.load(Relaxed)
}

/// Runs `f`; when profiling, adds its wall time and `flops` to `stage`.
#[inline]
pub fn time<R>(stage: Stage, flops: u64, f: impl FnOnce() -> R) -> R {
    if !ON.load(Relaxed) {
        return f();
    }
    let t = Instant::now();
    let r = f();
    let i = stage as usize;
    NS[i].fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
    FLOP[i].fetch_add(flops, Relaxed);
    CALLS[i].fetch_add(1, Relaxed);
    r
}

/// Parts of one decode step (`Qwen3::forward_batch` with ≤ 16 positions), timed only while
/// `set_parts(true)` (bench --profile turns them on around its decode steps, for 1 and for 8 rows):
/// they nest inside `Stage::Decode`, so they have counters of their own and are never summed with
/// the stages.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Part {
    /// The q, k and v projections.
    Qkv,
    /// The attention output projection.
    O,
    /// The MLP's gate and up projections.
    GateUp,
    /// The MLP's down projection.
    Down,
    /// Rotary, the KV cache append and attention over each row's cache.
    Attention,
    /// RMSNorms (input, post-attention, per-head q/k), SwiGLU and residual adds.
    Elementwise,
    /// The final norm and the output layer [V, H] for each row's last position.
    LmHead,
}

pub const PARTS: [Part; 7] = [Part::Qkv, Part::O, Part::GateUp, Part::Down, Part::Attention, Part::Elementwise, Part::LmHead];

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Qkv => "qkv",
            Part::O => "o",
            Part::GateUp => "gate_up",
            Part::Down => "down",
            Part::Attention => "attention",
            Part::Elementwise => "elementwise",
            Part::LmHead => "lm_head",
        }
    }
}

static PARTS_ON: AtomicBool = AtomicBool::new(false);
static PART_NS: [AtomicU64; PARTS.len()] = [const { AtomicU64::new(0) }; PARTS.len()];
static PART_FLOP: [AtomicU64; PARTS.len()] = [const { AtomicU64::new(0) }; PARTS.len()];
static PART_CALLS: [AtomicU64; PARTS.len()] = [const { AtomicU64::new(0) }; PARTS.len()];

/// Turns the decode-step part timers on (zeroing them) or off.
pub fn set_parts(on: bool) {
    if on {
        for i in 0..PARTS.len() {
            PART_NS[i].store(0, Relaxed);
            PART_FLOP[i].store(0, Relaxed);
            PART_CALLS[i].store(0, Relaxed);
        }
    }
    PARTS_ON.store(on, Relaxed);
}

/// Runs `f`; when the part timers are on, adds its wall time and `flops` to `part`.
#[inline]
pub fn time_part<R>(part: Part, flops: u64, f: impl FnOnce() -> R) -> R {
    if !PARTS_ON.load(Relaxed) {
        return f();
    }
    let t = Instant::now();
    let r = f();
    let i = part as usize;
    PART_NS[i].fetch_add(t.elapsed().as_nanos() as u64, Relaxed);
    PART_FLOP[i].fetch_add(flops, Relaxed);
    PART_CALLS[i].fetch_add(1, Relaxed);
    r
}

/// Each part's (part, seconds, flops, calls) since `set_parts(true)`, parts that ran only.
pub fn part_totals() -> Vec<(Part, f64, u64, u64)> {
    PARTS
        .iter()
        .map(|&p| {
            let i = p as usize;
            (p, PART_NS[i].load(Relaxed) as f64 * 1e-9, PART_FLOP[i].load(Relaxed), PART_CALLS[i].load(Relaxed))
        })
        .filter(|t| t.3 > 0)
        .collect()
}

/// One stage's totals since `set_enabled(true)`.
#[derive(Clone, Copy, Debug)]
pub struct StageTotal {
    pub stage: Stage,
    pub seconds: f64,
    pub flops: u64,
    pub calls: u64,
}

/// The stages that ran at least once, in pipeline order.
pub fn totals() -> Vec<StageTotal> {
    STAGES
        .iter()
        .map(|&s| {
            let i = s as usize;
            StageTotal { stage: s, seconds: NS[i].load(Relaxed) as f64 * 1e-9, flops: FLOP[i].load(Relaxed), calls: CALLS[i].load(Relaxed) }
        })
        .filter(|t| t.calls > 0)
        .collect()
}

/// FLOPs of y[m, n] = x[m, k] · W[n, k]ᵀ.
pub fn gemm_flops(m: usize, k: usize, n: usize) -> u64 {
    2 * (m * k * n) as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Disabled timers record nothing; enabled ones count calls and FLOPs per stage.
    #[test]
    fn counts_only_when_enabled() {
        set_enabled(false);
        assert_eq!(time(Stage::Sampling, 5, || 7), 7);
        set_enabled(true);
        assert!(totals().is_empty(), "enabling zeroes the counters");
        time(Stage::VitGemm, gemm_flops(2, 3, 4), || ());
        time(Stage::VitGemm, 10, || ());
        let t = totals();
        set_enabled(false);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].stage, t[0].calls, t[0].flops), (Stage::VitGemm, 2, 58));
    }

    /// Part timers are separate from the stages and count only while on.
    #[test]
    fn parts_count_only_when_on() {
        set_parts(false);
        assert_eq!(time_part(Part::Qkv, 5, || 3), 3);
        set_parts(true);
        assert!(part_totals().is_empty(), "turning them on zeroes the counters");
        time_part(Part::LmHead, 12, || ());
        time_part(Part::LmHead, 30, || ());
        let t = part_totals();
        set_parts(false);
        assert_eq!(t.len(), 1);
        assert_eq!((t[0].0, t[0].2, t[0].3), (Part::LmHead, 42, 2));
    }
}

/// CPU seconds of this thread (clock_gettime(CLOCK_THREAD_CPUTIME_ID = 3), syscall 228): the kernel
/// speed tests time in CPU time, which other processes on a busy machine do not inflate.
#[cfg(all(test, target_arch = "x86_64"))]
pub(crate) fn thread_cpu_s() -> f64 {
    let mut ts = [0i64; 2];
    // SAFETY: the kernel writes one struct timespec (two i64) into ts.
    unsafe {
        std::arch::asm!("syscall", inlateout("rax") 228i64 => _, in("rdi") 3i64, in("rsi") ts.as_mut_ptr(),
            lateout("rcx") _, lateout("r11") _, options(nostack));
    }
    ts[0] as f64 + ts[1] as f64 * 1e-9
}

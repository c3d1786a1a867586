//! Command-line arguments of `ovis-engine bench` (also what `ovis bench` passes through), and the
//! plan they resolve to once the backend is known: the defaults differ between a CPU and a GPU.

pub const USAGE: &str = "usage: ovis-engine bench (--synthetic 2b|9b | --model DIR [--lora ADAPTER]) [--device auto|cpu|cuda|cuda:N] [--full]
       [--weights bf16|int8|int4 [--quality]]
       [--images 896,1792] [--prompt-tokens 128] [--decode-tokens 32] [--repeats 3] [--warmup 1]
       [--concurrency 1,2,4,8] [--profile] [--precision f32|bf16]

Prints one JSON object per line on stdout: a \"plan\" first, a \"figure\" as each is measured, a \"report\" last.
Defaults on a GPU, and with --full: images 896,1792 (GPU) or 448,896 (CPU), 32 decode tokens, 3 repeats
after 1 warm-up, each figure timed in its own runs. On the CPU without --full (1–2 minutes for 2B on
2 cores): image 448, 16 decode tokens, 3 repeats, no warm-up, and vision encode timed inside the
time-to-first-token runs. Flags given explicitly override either set.
--concurrency N[,M…] measures only continuous batching: N requests decoding together through
the engine's scheduler, aggregate tokens/s and each stream's gaps between tokens (median, p99), then
the same while one more request prefills a prompt of max(--prompt-tokens, 512) positions (2000 for
issue 10's target), with the ratios to the targets: aggregate / one stream's tokens/s, and p99 gap
beside the prefill / the streams' median step without it. The same scheduler on CUDA (batched
decode steps; never run on a GPU yet).
--profile (CPU) adds one pass with stage timers after the figures: one encode of the first image,
one prefill, --decode-tokens decode steps; time per stage (patchify, ViT GEMMs, ViT attention,
ViT elementwise, visual head, VTE, prefill, decode, sampling), GFLOP/s and % of the measured
f32 FMA peak for the compute stages; then decode_breakdown: batched decode steps of 1 and 8 rows
timed by part (q/k/v, o, gate/up, down, attention, elementwise, lm_head) to find where a step goes.
--precision bf16 (CPU): the compute-bound products (ViT, visual head, VTE, prefill) round activations
to bf16 and use AMX or AVX512_BF16 dot products where the CPU has them (f32 otherwise); f32 (default)
is the exact mode.
--weights int8|int4 (CPU) quantizes the decoder's linear layers as the weights load (default bf16,
as stored); the report names the mode and the decode kernel, and the bandwidth floor counts the
quantized bytes. --quality measures only the quantized decoder against the same weights in bf16:
last-position logits cosine after a --prompt-tokens prompt of random text ids, and how many of the
first --decode-tokens greedy ids agree.";

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub synthetic: Option<String>,
    pub model: Option<String>,
    /// A LoRA adapter directory merged into --model's weights at load.
    pub lora: Option<String>,
    pub device: String,
    /// The complete (slow on a CPU) set of figures; a GPU always gets it.
    pub full: bool,
    /// Square image sides in pixels for the vision-encode and time-to-first-token figures; empty = none.
    /// None here and below = the plan's default for the backend.
    pub images: Option<Vec<usize>>,
    pub prompt_tokens: usize,
    pub decode_tokens: Option<usize>,
    pub repeats: Option<usize>,
    pub warmup: Option<usize>,
    /// Stream counts for the continuous-batching figures; empty = the usual figures instead.
    pub concurrency: Vec<usize>,
    /// One more pass with the stage timers on (measure_profile.rs).
    pub profile: bool,
    /// Arithmetic of the CPU's compute-bound products (backend/cpu/precision.rs).
    pub precision: crate::backend::cpu::precision::Precision,
    /// How the decoder's linear layers are held (quant.rs).
    pub weights: crate::backend::cpu::quant::WeightMode,
    /// Quality of the quantized decoder against bf16 instead of speed (measure_quality.rs).
    pub quality: bool,
}

/// What a run measures, with every default resolved for its backend.
#[derive(Debug, Clone)]
pub struct Plan {
    pub images: Vec<usize>,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub repeats: usize,
    pub warmup: usize,
    /// True: vision encode is the encode (+ visual head) part of each time-to-first-token run, timed
    /// inside it; false: vision encode is timed in runs of its own (twice the image work).
    pub encode_in_first_token_runs: bool,
    /// Stream counts of the continuous-batching sweep (then nothing else is measured).
    pub concurrency: Vec<usize>,
    pub profile: bool,
}

fn number(flag: &str, v: Option<&String>) -> Result<usize, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse::<usize>().map_err(|_| format!("{flag} must be a whole number, got {v:?}"))
}

fn sides(v: &str) -> Result<Vec<usize>, String> {
    let sides: Vec<usize> = if v.is_empty() || v == "none" { vec![] } else { v.split(',').map(|s| s.trim().parse::<usize>().map_err(|_| format!("--images takes sides in pixels like 896,1792, got {v:?}"))).collect::<Result<_, _>>()? };
    if sides.iter().any(|&s| s < 32 || s % 32 != 0) {
        return Err(format!("--images sides must be multiples of 32 from 32 up, got {v:?}"));
    }
    Ok(sides)
}

fn counts(v: &str) -> Result<Vec<usize>, String> {
    let n: Vec<usize> = v.split(',').map(|s| s.trim().parse::<usize>().ok().filter(|n| (1..=64).contains(n))).collect::<Option<_>>().ok_or_else(|| format!("--concurrency takes stream counts from 1 to 64 like 1,2,4,8, got {v:?}"))?;
    Ok(n)
}

impl BenchArgs {
    pub fn parse(argv: &[String]) -> Result<BenchArgs, String> {
        let mut a = BenchArgs { synthetic: None, model: None, lora: None, device: "auto".into(), full: false, images: None, prompt_tokens: 128, decode_tokens: None, repeats: None, warmup: None, concurrency: vec![], profile: false, precision: crate::backend::cpu::precision::Precision::F32, weights: crate::backend::cpu::quant::WeightMode::Bf16, quality: false };
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--synthetic" => a.synthetic = it.next().cloned(),
                "--model" => a.model = it.next().cloned(),
                "--lora" => a.lora = Some(it.next().cloned().ok_or("--lora needs an adapter directory")?),
                "--device" => a.device = it.next().cloned().ok_or("--device needs a value")?,
                "--full" => a.full = true,
                "--profile" => a.profile = true,
                "--precision" => a.precision = crate::backend::cpu::precision::Precision::parse(it.next().ok_or("--precision needs a value: f32 or bf16")?).map_err(|e| format!("--{e}"))?,
                "--quality" => a.quality = true,
                "--weights" => a.weights = crate::backend::cpu::quant::WeightMode::parse(it.next().ok_or("--weights needs a value: bf16, int8 or int4")?)?,
                "--images" => a.images = Some(sides(it.next().ok_or("--images needs a value")?)?),
                "--prompt-tokens" => a.prompt_tokens = number(flag, it.next())?,
                "--decode-tokens" => a.decode_tokens = Some(number(flag, it.next())?),
                "--repeats" => a.repeats = Some(number(flag, it.next())?.max(1)),
                "--warmup" => a.warmup = Some(number(flag, it.next())?),
                "--concurrency" => a.concurrency = counts(it.next().ok_or("--concurrency needs a value")?)?,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        match (&a.synthetic, &a.model) {
            (None, None) => return Err("give --synthetic 2b|9b or --model DIR".into()),
            (Some(_), Some(_)) => return Err("give --synthetic or --model, not both".into()),
            (Some(s), None) if super::presets::preset_config(s).is_none() => return Err(format!("--synthetic {s:?}: use 2b or 9b")),
            _ => {}
        }
        if a.lora.is_some() && a.model.is_none() {
            return Err("--lora needs --model DIR (an adapter is merged into a model's weights)".into());
        }
        if a.quality && a.weights == crate::backend::cpu::quant::WeightMode::Bf16 {
            return Err("--quality compares --weights int8 or int4 with bf16: give --weights int8|int4".into());
        }
        if a.prompt_tokens == 0 || a.decode_tokens == Some(0) {
            return Err("--prompt-tokens and --decode-tokens must be at least 1".into());
        }
        Ok(a)
    }

    /// The plan on a GPU (`gpu`) or the CPU. The CPU's quick set was sized on 2 cores with synthetic
    /// 2B weights: one 448² time-to-first-token run ≈ 8.6 s (6.0 s of it vision encode), 896² ≈ 7× that,
    /// prefill of 128 tokens ≈ 1.7 s, decode ≈ 150 ms/token; so 3 runs of each at 448² plus 3 × 16
    /// decode steps take about 40 s after the weights are built.
    pub fn plan(&self, gpu: bool) -> Plan {
        let quick = !gpu && !self.full;
        let default_images = match (gpu, quick) {
            (true, _) => vec![896, 1792],
            (false, false) => vec![448, 896],
            (false, true) => vec![448],
        };
        Plan {
            images: self.images.clone().unwrap_or(default_images),
            prompt_tokens: self.prompt_tokens,
            decode_tokens: self.decode_tokens.unwrap_or(if quick { 16 } else { 32 }),
            repeats: self.repeats.unwrap_or(3),
            warmup: self.warmup.unwrap_or(if quick { 0 } else { 1 }),
            encode_in_first_token_runs: quick,
            concurrency: self.concurrency.clone(),
            profile: self.profile,
        }
    }
}

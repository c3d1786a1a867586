//! Command-line arguments of `ovis-engine bench` (also what `ovis bench` passes through).

pub const USAGE: &str = "usage: ovis-engine bench (--synthetic 2b|9b | --model DIR) [--device auto|cpu|cuda|cuda:N]
       [--images 896,1792] [--prompt-tokens 128] [--decode-tokens 32] [--repeats 3] [--warmup 1]";

#[derive(Debug, Clone)]
pub struct BenchArgs {
    pub synthetic: Option<String>,
    pub model: Option<String>,
    pub device: String,
    /// Square image sides in pixels for the vision-encode and time-to-first-token figures; empty = none;
    /// None = the backend's default (896, 1792 on a GPU; 448, 896 on the CPU, where 1792² takes minutes).
    pub images: Option<Vec<usize>>,
    pub prompt_tokens: usize,
    pub decode_tokens: usize,
    pub repeats: usize,
    pub warmup: usize,
}

fn number(flag: &str, v: Option<&String>) -> Result<usize, String> {
    let v = v.ok_or_else(|| format!("{flag} needs a value"))?;
    v.parse::<usize>().map_err(|_| format!("{flag} must be a whole number, got {v:?}"))
}

impl BenchArgs {
    pub fn parse(argv: &[String]) -> Result<BenchArgs, String> {
        let mut a = BenchArgs { synthetic: None, model: None, device: "auto".into(), images: None, prompt_tokens: 128, decode_tokens: 32, repeats: 3, warmup: 1 };
        let mut it = argv.iter();
        while let Some(flag) = it.next() {
            match flag.as_str() {
                "--synthetic" => a.synthetic = it.next().cloned(),
                "--model" => a.model = it.next().cloned(),
                "--device" => a.device = it.next().cloned().ok_or("--device needs a value")?,
                "--images" => {
                    let v = it.next().ok_or("--images needs a value")?;
                    let sides: Vec<usize> = if v.is_empty() || v == "none" { vec![] } else { v.split(',').map(|s| s.trim().parse::<usize>().map_err(|_| format!("--images takes sides in pixels like 896,1792, got {v:?}"))).collect::<Result<_, _>>()? };
                    if sides.iter().any(|&s| s < 32 || s % 32 != 0) {
                        return Err(format!("--images sides must be multiples of 32 from 32 up, got {v:?}"));
                    }
                    a.images = Some(sides);
                }
                "--prompt-tokens" => a.prompt_tokens = number(flag, it.next())?,
                "--decode-tokens" => a.decode_tokens = number(flag, it.next())?,
                "--repeats" => a.repeats = number(flag, it.next())?.max(1),
                "--warmup" => a.warmup = number(flag, it.next())?,
                other => return Err(format!("unknown argument {other:?}")),
            }
        }
        match (&a.synthetic, &a.model) {
            (None, None) => return Err("give --synthetic 2b|9b or --model DIR".into()),
            (Some(_), Some(_)) => return Err("give --synthetic or --model, not both".into()),
            (Some(s), None) if super::presets::preset_config(s).is_none() => return Err(format!("--synthetic {s:?}: use 2b or 9b")),
            _ => {}
        }
        if a.prompt_tokens == 0 || a.decode_tokens == 0 {
            return Err("--prompt-tokens and --decode-tokens must be at least 1".into());
        }
        Ok(a)
    }
}

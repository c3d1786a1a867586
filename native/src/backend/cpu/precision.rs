//! Which arithmetic the compute-bound CPU products (ViT, visual head, VTE, prefill: m > 16 rows) use.
//!
//! * `f32` (default, exact to the fixtures): f32 activations × bf16 weights in f32 arithmetic. Where
//!   AMX is granted, on the tile unit: each activation split exactly into three bf16 terms
//!   (gemm_amx_split.rs: exact products, f32 sums, only the rounding order differs from FMAs); else
//!   (or with `OVIS_CPU_F32=fma`) the AVX-512 / AVX2 f32 FMA GEMM (gemm.rs).
//! * `bf16` (opt-in, `--precision bf16`): activations rounded to bf16 (round to nearest even) and
//!   multiplied with the bf16 weights by the CPU's bf16 dot-product units, sums in f32: AMX tiles
//!   (`tdpbf16ps`) where the CPU has AMX-BF16 and the kernel grants the tile-data permission, else
//!   AVX512_BF16 (`vdpbf16ps`), else the f32 path (said in `ovis info`).
//!
//! The setting is process-wide (one model per engine): the engine sets it once at load.
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::OnceLock;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precision {
    F32,
    Bf16,
}

impl Precision {
    pub fn parse(v: &str) -> Result<Precision, String> {
        match v {
            "f32" => Ok(Precision::F32),
            "bf16" => Ok(Precision::Bf16),
            _ => Err(format!("precision must be f32 or bf16, got {v:?}")),
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Precision::F32 => "f32",
            Precision::Bf16 => "bf16",
        }
    }
}

static PRECISION: AtomicU8 = AtomicU8::new(0);

pub fn set_precision(p: Precision) {
    PRECISION.store(p as u8, Ordering::Relaxed);
}

pub fn precision() -> Precision {
    if PRECISION.load(Ordering::Relaxed) == Precision::Bf16 as u8 {
        Precision::Bf16
    } else {
        Precision::F32
    }
}

/// The bf16 dot-product kernel this CPU runs in bf16 precision.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bf16Path {
    Amx,
    Avx512Bf16,
}

pub struct Bf16Support {
    pub path: Option<Bf16Path>,
    /// Why this path (CPU features, the AMX permission), for `ovis info`.
    pub why: String,
}

/// Detected once. OVIS_CPU_BF16=avx512bf16 skips AMX (to compare the two paths; the f32 products then
/// run on the FMA GEMM too, see `f32_gemm`).
pub fn bf16_support() -> &'static Bf16Support {
    static S: OnceLock<Bf16Support> = OnceLock::new();
    S.get_or_init(detect)
}

#[cfg(target_arch = "x86_64")]
fn detect() -> Bf16Support {
    let avx512bf16 = std::arch::is_x86_feature_detected!("avx512bf16") && std::arch::is_x86_feature_detected!("avx512f");
    if !avx512bf16 {
        return Bf16Support { path: None, why: "this CPU has no AVX512_BF16 (nor AMX-BF16): bf16 precision computes in f32".into() };
    }
    if std::env::var("OVIS_CPU_BF16").is_ok_and(|v| v == "avx512bf16") {
        return Bf16Support { path: Some(Bf16Path::Avx512Bf16), why: "AVX512_BF16 (AMX skipped: OVIS_CPU_BF16=avx512bf16)".into() };
    }
    if !amx_bf16_in_cpuid() {
        return Bf16Support { path: Some(Bf16Path::Avx512Bf16), why: "AVX512_BF16; this CPU has no AMX-BF16".into() };
    }
    match request_amx_permission() {
        Ok(()) => Bf16Support { path: Some(Bf16Path::Amx), why: "AMX-BF16 tiles (kernel granted XTILEDATA)".into() },
        Err(e) => Bf16Support { path: Some(Bf16Path::Avx512Bf16), why: format!("AVX512_BF16; the CPU has AMX-BF16 but {e}") },
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn detect() -> Bf16Support {
    Bf16Support { path: None, why: "not an x86-64 CPU: bf16 precision computes in f32".into() }
}

/// CPUID leaf 7 sub-leaf 0, EDX bit 24 (AMX-TILE) and bit 22 (AMX-BF16).
#[cfg(target_arch = "x86_64")]
fn amx_bf16_in_cpuid() -> bool {
    // CPUID leaf 7 exists on every x86-64 CPU that has AVX-512 (checked by the caller).
    let r = std::arch::x86_64::__cpuid_count(7, 0);
    r.edx & (1 << 24) != 0 && r.edx & (1 << 22) != 0
}

/// Linux makes a process ask before it may use the 8 KiB AMX tile-data state:
/// arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18). Granted to the whole process.
#[cfg(target_arch = "x86_64")]
fn request_amx_permission() -> Result<(), String> {
    #[cfg(target_os = "linux")]
    {
        const SYS_ARCH_PRCTL: i64 = 158;
        const ARCH_REQ_XCOMP_PERM: i64 = 0x1023;
        const XFEATURE_XTILEDATA: i64 = 18;
        let ret: i64;
        // SAFETY: a plain system call; the kernel reads only the two integer arguments.
        unsafe {
            std::arch::asm!("syscall", inlateout("rax") SYS_ARCH_PRCTL => ret, in("rdi") ARCH_REQ_XCOMP_PERM, in("rsi") XFEATURE_XTILEDATA,
                lateout("rcx") _, lateout("r11") _, options(nostack));
        }
        if ret == 0 {
            Ok(())
        } else {
            Err(format!("the kernel refused the AMX tile permission (arch_prctl ARCH_REQ_XCOMP_PERM: errno {})", -ret))
        }
    }
    #[cfg(not(target_os = "linux"))]
    Err("AMX permission is only requested on Linux".into())
}

/// The kernel of the f32 (default) precision's products with m > 16 rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum F32Gemm {
    /// AMX tiles on x split into three bf16 terms (f32 arithmetic; gemm_amx_split.rs).
    AmxSplit,
    /// The f32 FMA GEMM (gemm.rs: AVX-512F or AVX2+FMA, else the portable loop).
    Fma,
}

/// Detected once: AmxSplit where bf16_support chose AMX, unless `OVIS_CPU_F32=fma` (the A/B switch).
pub fn f32_gemm() -> F32Gemm {
    static G: OnceLock<F32Gemm> = OnceLock::new();
    *G.get_or_init(|| {
        let fma = std::env::var("OVIS_CPU_F32").is_ok_and(|v| v == "fma");
        if bf16_support().path == Some(Bf16Path::Amx) && !fma {
            F32Gemm::AmxSplit
        } else {
            F32Gemm::Fma
        }
    })
}

/// For `ovis info` / bench: the GEMM path products with m > 16 rows take in `p`.
pub fn gemm_path_for(p: Precision) -> String {
    let f32_path = match f32_gemm() {
        F32Gemm::AmxSplit => "amx-bf16x3",
        F32Gemm::Fma => super::kernel_path(),
    };
    match p {
        Precision::F32 => f32_path.to_string(),
        Precision::Bf16 => match bf16_support().path {
            Some(Bf16Path::Amx) => "amx-bf16".into(),
            Some(Bf16Path::Avx512Bf16) => "avx512-bf16".into(),
            None => f32_path.to_string(),
        },
    }
}

/// Why the f32 products take their path (for `ovis info`'s "f32").
fn f32_why() -> String {
    match f32_gemm() {
        F32Gemm::AmxSplit => "AMX-BF16 tiles on activations split into 3 exact bf16 terms (exact products, f32 sums); OVIS_CPU_F32=fma for the FMA GEMM".into(),
        F32Gemm::Fma if std::env::var("OVIS_CPU_F32").is_ok_and(|v| v == "fma") => format!("{} FMA GEMM (OVIS_CPU_F32=fma)", super::kernel_path()),
        F32Gemm::Fma => format!("{} FMA GEMM (no AMX: {})", super::kernel_path(), bf16_support().why),
    }
}

/// What `ovis info` and the bench report show: the kernel path of each product family in precision
/// `p`, and why (CPU features, the AMX permission).
pub fn kernels_json(p: Precision) -> serde_json::Value {
    let f32_path = super::kernel_path();
    let forced_blocked = std::env::var("OVIS_CPU_ATTENTION").is_ok_and(|v| v == "blocked");
    let amx_attention = p == Precision::Bf16 && bf16_support().path == Some(Bf16Path::Amx) && !forced_blocked;
    let attention = match (f32_path, forced_blocked) {
        _ if amx_attention => "flash amx-bf16",
        ("avx512f", false) => "flash avx512f",
        ("avx512f", true) => "blocked loop (OVIS_CPU_ATTENTION=blocked)",
        _ => "blocked loop (no AVX-512F)",
    };
    serde_json::json!({
        "precision": p.name(),
        "gemm": gemm_path_for(p),
        "gemm_f32": gemm_path_for(Precision::F32),
        "f32": f32_why(),
        "gemv": super::gemv::kernel_name(),
        "vit_attention": attention,
        "bf16": bf16_support().why,
    })
}

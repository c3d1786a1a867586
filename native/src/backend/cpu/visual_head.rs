//! The visual tokenizer head and the visual embedding table (model-spec.md §5): each merge cell's
//! s² ViT tokens → Linear → LayerNorm (eps 1e-5) → softmax → probabilities over the visual vocabulary
//! (4 zero indicator columns appended) → · VTE → LLM input embeddings. Indicator ids are VTE rows.
use crate::backend::cpu::matmul::matmul_bf16;
use crate::backend::cpu::profile::{self, gemm_flops, Stage};
use crate::backend::cpu::vision_ops::{layer_norm, matmul_nn_bf16, softmax_rows};
use crate::error::{bad_request, Result};
use crate::model::config::ModelConfig;
use crate::model::merge::INDICATOR_IDS;
use crate::model::source::WeightSource;
use crate::model::synthetic::head_tensor;
use crate::model::weights::WeightRef;

/// The head LayerNorm is a plain `nn.LayerNorm` with PyTorch's default eps, not the ViT's 1e-6 (trap 2).
const HEAD_LN_EPS: f64 = 1e-5;

pub struct VisualHead {
    /// Linear without bias [V−4, s²·D].
    head0: WeightRef,
    /// LayerNorm weight and bias [V−4].
    ln: (Vec<f32>, Vec<f32>),
    /// Visual embedding table [V, H_llm].
    vte: WeightRef,
    vocab: usize,
    in_dim: usize,
    hidden: usize,
}

impl VisualHead {
    pub fn load(cfg: &ModelConfig, src: &WeightSource) -> Result<Self> {
        Self::build(cfg, |name, shape| src.get(name, shape))
    }

    /// Random weights of the configured shapes (benchmarks and tests; outputs are meaningless).
    pub fn synthetic(cfg: &ModelConfig, seed: u64) -> Self {
        Self::build(cfg, |name, shape| Ok(head_tensor(seed, name, shape))).expect("synthetic weights always have the configured shapes")
    }

    fn build(cfg: &ModelConfig, mut get: impl FnMut(&str, &[usize]) -> Result<WeightRef>) -> Result<Self> {
        let (v, h) = (cfg.visual_vocab, cfg.llm.hidden);
        let s = cfg.vit.hidden_stride;
        let in_dim = s * s * cfg.vit.hidden;
        let head0 = get("visual_tokenizer.head.0.weight", &[v - 4, in_dim])?;
        let ln = (get("visual_tokenizer.head.1.weight", &[v - 4])?.to_f32(), get("visual_tokenizer.head.1.bias", &[v - 4])?.to_f32());
        let vte = get("vte.weight", &[v, h])?;
        Ok(VisualHead { head0, ln, vte, vocab: v, in_dim, hidden: h })
    }

    /// Visual vocabulary size V (probability columns, VTE rows).
    pub fn visual_vocab(&self) -> usize {
        self.vocab
    }

    /// The LLM hidden size H (VTE columns).
    pub fn hidden(&self) -> usize {
        self.hidden
    }

    /// vit_out [N, D] (§2.5 order) → probabilities [N/s², V]: row m concatenates tokens s²m..s²m+s²−1.
    pub fn probabilities(&self, vit_out: &[f32]) -> Result<Vec<f32>> {
        if vit_out.is_empty() || !vit_out.len().is_multiple_of(self.in_dim) {
            return Err(bad_request(format!("vision features have {} floats: not a positive multiple of one merge cell ({})", vit_out.len(), self.in_dim)));
        }
        let (m, v) = (vit_out.len() / self.in_dim, self.vocab);
        let mut logits = vec![0f32; m * (v - 4)];
        profile::time(Stage::HeadGemm, gemm_flops(m, self.in_dim, v - 4), || matmul_bf16(vit_out, m, self.in_dim, self.head0.data(), v - 4, None, &mut logits));
        profile::time(Stage::HeadNormSoftmax, 0, || {
            layer_norm(&mut logits, v - 4, &self.ln.0, &self.ln.1, HEAD_LN_EPS);
            softmax_rows(&mut logits, v - 4);
        });
        let mut probs = vec![0f32; m * v];
        for (dst, src) in probs.chunks_mut(v).zip(logits.chunks(v - 4)) {
            dst[..v - 4].copy_from_slice(src);
        }
        Ok(probs)
    }

    /// probabilities [M, V] → visual embeddings [M, H] = probs · VTE.
    pub fn embed(&self, probs: &[f32]) -> Result<Vec<f32>> {
        if !probs.len().is_multiple_of(self.vocab) {
            return Err(bad_request(format!("visual probabilities have {} floats: not a multiple of the visual vocabulary {}", probs.len(), self.vocab)));
        }
        let m = probs.len() / self.vocab;
        let mut out = vec![0f32; m * self.hidden];
        profile::time(Stage::Vte, gemm_flops(m, self.vocab, self.hidden), || matmul_nn_bf16(probs, m, self.vocab, self.vte.data(), self.hidden, &mut out));
        Ok(out)
    }

    /// vit_out [N, D] → (probabilities [N/s², V], embeddings [N/s², H]).
    pub fn forward(&self, vit_out: &[f32]) -> Result<(Vec<f32>, Vec<f32>)> {
        let probs = self.probabilities(vit_out)?;
        let embeds = self.embed(&probs)?;
        Ok((probs, embeds))
    }

    /// The embedding [H] of an indicator id (−301..−304 → VTE row V−4+i); any other id is a bad request.
    pub fn indicator(&self, id: i32) -> Result<Vec<f32>> {
        let i = INDICATOR_IDS.iter().position(|&x| x == id).ok_or_else(|| bad_request(format!("token id {id} is not a visual indicator (−301..−304)")))?;
        let row = self.vocab - 4 + i;
        Ok(self.vte.data()[row * self.hidden..(row + 1) * self.hidden].iter().map(|x| x.to_f32()).collect())
    }
}

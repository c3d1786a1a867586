//! What the SigLIP2-NaViT vision encoder of Ovis2.5 is (model-spec.md §4), apart from how it is
//! run: the consistency of its configured sizes and the patch layout (`layout`: grids, frames,
//! windows, merge cells). Its CPU and CUDA forwards are the twin files vision.rs beside the decoder forwards.
pub mod layout;

use crate::error::{model_err, Result};
use crate::model::config::VitConfig;

/// The ViT sizes the CPU and CUDA forwards rely on: patch, image size, merge stride and window consistent.
pub fn check_config(cfg: &VitConfig) -> Result<()> {
    let p = cfg.patch;
    if p == 0 || cfg.image_size < p || cfg.hidden_stride == 0 || cfg.heads == 0 || cfg.hidden % cfg.heads != 0 {
        return Err(model_err(format!(
            "config.json: vit patch_size {p} / image_size {} / hidden_stride {} / {} heads of hidden {} are inconsistent",
            cfg.image_size, cfg.hidden_stride, cfg.heads, cfg.hidden
        )));
    }
    if cfg.fullatt_blocks.is_some() && cfg.window_size / cfg.hidden_stride / p == 0 {
        return Err(model_err(format!("config.json: vit window_size {} is smaller than one merge cell", cfg.window_size)));
    }
    Ok(())
}

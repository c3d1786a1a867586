//! Released model shapes for synthetic benchmarks (model-spec.md §1.2): no files needed.
use crate::model::config::ModelConfig;

/// config.json text of a released (or the fixture's) shape; the loader parses it like a real one.
pub fn preset_config(name: &str) -> Option<ModelConfig> {
    let (hidden, layers, heads, inter, tie) = match name {
        "2b" => (2048, 28, 16, 6144, true),
        "9b" => (4096, 36, 32, 12288, false),
        _ => return None,
    };
    let json = format!(
        r#"{{"visual_vocab_size":65536,
        "llm_config":{{"hidden_size":{hidden},"num_hidden_layers":{layers},"num_attention_heads":{heads},
          "num_key_value_heads":8,"head_dim":128,"intermediate_size":{inter},"vocab_size":151936,
          "max_position_embeddings":40960,"rope_theta":1000000,"rms_norm_eps":1e-6,"tie_word_embeddings":{tie}}},
        "vit_config":{{"hidden_size":1152,"intermediate_size":4304,"num_hidden_layers":27,"num_attention_heads":16,
          "num_channels":3,"image_size":512,"patch_size":16,"hidden_stride":2,"temporal_patch_size":1,
          "window_size":112,"fullatt_block_indexes":null,"layer_norm_eps":1e-6}}}}"#
    );
    Some(ModelConfig::from_json(&json).expect("preset configs are valid"))
}

//! Sessions: one KV cache per conversation, kept between requests so a new turn prefills only new ids.
use crate::generate::kv_cache::KvCache;
use crate::model::config::LlmConfig;
use std::collections::HashMap;

#[derive(Default)]
pub struct Sessions {
    caches: HashMap<String, KvCache>,
}

impl Sessions {
    /// The session's cache, created empty on first use.
    pub fn get_or_create(&mut self, name: &str, cfg: &LlmConfig) -> &mut KvCache {
        self.caches.entry(name.to_string()).or_insert_with(|| KvCache::new(cfg))
    }

    pub fn close(&mut self, name: &str) -> bool {
        self.caches.remove(name).is_some()
    }

    pub fn clear(&mut self) {
        self.caches.clear();
    }
}

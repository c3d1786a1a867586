//! The KV cache of one session: per layer, post-rope keys and values as f32 [positions, kv_heads,
//! head_dim], growing as positions are appended; it persists between requests so a new turn keeps
//! the prefix it shares with the previous one (`truncate`) and prefills only the new ids.
use crate::model::config::LlmConfig;

pub struct KvCache {
    layers: usize,
    /// kv_heads · head_dim: f32 values per position per layer, for K and for V each.
    kv_dim: usize,
    /// Committed positions; a layer may briefly hold more while a forward pass is appending.
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
}

impl KvCache {
    pub fn new(cfg: &LlmConfig) -> KvCache {
        KvCache { layers: cfg.layers, kv_dim: cfg.kv_heads * cfg.head_dim, len: 0, k: vec![Vec::new(); cfg.layers], v: vec![Vec::new(); cfg.layers] }
    }

    /// Positions held (the next position to be written).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps positions 0..n (no-op when n ≥ len); the memory stays reserved for reuse.
    pub fn truncate(&mut self, n: usize) {
        let n = n.min(self.len);
        for (k, v) in self.k.iter_mut().zip(&mut self.v) {
            k.truncate(n * self.kv_dim);
            v.truncate(n * self.kv_dim);
        }
        self.len = n;
    }

    /// Drops every position and frees the memory.
    pub fn clear(&mut self) {
        for (k, v) in self.k.iter_mut().zip(&mut self.v) {
            *k = Vec::new();
            *v = Vec::new();
        }
        self.len = 0;
    }

    /// Bytes of K and V held for the stored positions (2 · layers · len · kv_heads · head_dim · 4).
    pub fn bytes(&self) -> usize {
        2 * self.layers * self.len * self.kv_dim * std::mem::size_of::<f32>()
    }

    /// Bytes allocated, including room reserved by earlier, longer contents.
    pub fn capacity_bytes(&self) -> usize {
        self.k.iter().chain(&self.v).map(|b| b.capacity() * std::mem::size_of::<f32>()).sum()
    }

    pub fn layers(&self) -> usize {
        self.layers
    }

    /// kv_heads · head_dim.
    pub fn kv_dim(&self) -> usize {
        self.kv_dim
    }

    /// Whether this cache has the layout a model of `cfg` writes.
    pub fn fits(&self, cfg: &LlmConfig) -> bool {
        self.layers == cfg.layers && self.kv_dim == cfg.kv_heads * cfg.head_dim
    }

    /// Appends new positions' k, v ([new, kv_heads, head_dim] each) to `layer`, after the committed
    /// ones; they become visible to `len()` at `commit`. Every layer must append the same count.
    pub fn append(&mut self, layer: usize, k: &[f32], v: &[f32]) {
        assert!(k.len() == v.len() && k.len().is_multiple_of(self.kv_dim), "KvCache::append: k and v must be [new, kv_dim]");
        assert_eq!(self.k[layer].len(), self.len * self.kv_dim, "KvCache::append: layer {layer} already has uncommitted positions");
        self.k[layer].extend_from_slice(k);
        self.v[layer].extend_from_slice(v);
    }

    /// K and V of `layer` including appended, uncommitted positions: [positions, kv_heads, head_dim].
    pub fn layer(&self, layer: usize) -> (&[f32], &[f32]) {
        (&self.k[layer], &self.v[layer])
    }

    /// Makes `new` appended positions (present in every layer) part of the cache.
    pub fn commit(&mut self, new: usize) {
        let want = (self.len + new) * self.kv_dim;
        assert!(self.k.iter().chain(&self.v).all(|b| b.len() == want), "KvCache::commit: not every layer appended {new} positions");
        self.len += new;
    }

    /// Reserves room for `extra` more positions in every layer (avoids regrowth during a long prefill).
    pub fn reserve(&mut self, extra: usize) {
        for b in self.k.iter_mut().chain(&mut self.v) {
            b.reserve(extra * self.kv_dim);
        }
    }
}

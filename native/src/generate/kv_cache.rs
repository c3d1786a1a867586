//! The KV cache of one session: per layer, post-rope keys and values as f32 [positions, kv_heads,
//! head_dim], growing as positions are appended; it persists between requests so a new turn keeps
//! the prefix it shares with the previous one (`truncate`) and prefills only the new ids.
//! It also keeps the input embeddings of its positions ([positions, hidden] f32: hidden/(2·layers·
//! kv_dim) of the K/V's size, 3.6 % for 2B), so that under memory pressure its K/V can be dropped
//! (`evict`) and rebuilt from them when the conversation continues, the client none the wiser.
use crate::model::config::LlmConfig;

pub struct KvCache {
    layers: usize,
    /// kv_heads · head_dim: f32 values per position per layer, for K and for V each.
    kv_dim: usize,
    /// Committed positions; a layer may briefly hold more while a forward pass is appending.
    len: usize,
    k: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    hidden: usize,
    /// Input embeddings of the positions written so far, [history, hidden]; after `evict`, more
    /// positions than the K/V hold.
    inputs: Vec<f32>,
}

impl KvCache {
    pub fn new(cfg: &LlmConfig) -> KvCache {
        KvCache { layers: cfg.layers, kv_dim: cfg.kv_heads * cfg.head_dim, len: 0, k: vec![Vec::new(); cfg.layers], v: vec![Vec::new(); cfg.layers], hidden: cfg.hidden, inputs: Vec::new() }
    }

    /// Positions of the conversation this cache stands for: `len()`, or more after an `evict`.
    pub fn history(&self) -> usize {
        self.inputs.len() / self.hidden
    }

    /// The input embeddings of positions 0..n ([n, hidden]), to rebuild an evicted cache from.
    pub fn inputs(&self, n: usize) -> &[f32] {
        &self.inputs[..n * self.hidden]
    }

    /// Records the input embeddings of positions just committed ([new, hidden]).
    pub fn record_inputs(&mut self, embeds: &[f32]) {
        self.inputs.extend_from_slice(embeds);
    }

    /// Frees the K/V memory but keeps the inputs: `history()` positions can be rebuilt later.
    /// Returns the bytes freed.
    pub fn evict(&mut self) -> usize {
        let freed = self.kv_capacity_bytes();
        for (k, v) in self.k.iter_mut().zip(&mut self.v) {
            *k = Vec::new();
            *v = Vec::new();
        }
        self.len = 0;
        freed
    }

    /// Whether `evict` dropped K/V that the history still names.
    pub fn is_evicted(&self) -> bool {
        self.history() > self.len
    }

    /// Bytes a position takes in the K/V (2 · layers · kv_dim · 4) plus its input embedding.
    pub fn bytes_per_position(&self) -> usize {
        (2 * self.layers * self.kv_dim + self.hidden) * std::mem::size_of::<f32>()
    }

    /// Bytes allocated for K/V (reserved room included): what eviction frees.
    pub fn kv_capacity_bytes(&self) -> usize {
        self.k.iter().chain(&self.v).map(|b| b.capacity() * std::mem::size_of::<f32>()).sum()
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
        self.inputs.truncate(n.min(self.history()) * self.hidden);
        let n = n.min(self.len);
        for (k, v) in self.k.iter_mut().zip(&mut self.v) {
            k.truncate(n * self.kv_dim);
            v.truncate(n * self.kv_dim);
        }
        self.len = n;
    }

    /// Drops every position and frees the memory.
    pub fn clear(&mut self) {
        self.evict();
        self.inputs = Vec::new();
    }

    /// Bytes of K and V held for the stored positions (2 · layers · len · kv_heads · head_dim · 4).
    pub fn bytes(&self) -> usize {
        2 * self.layers * self.len * self.kv_dim * std::mem::size_of::<f32>()
    }

    /// Bytes allocated, including room reserved by earlier, longer contents (K/V and inputs).
    pub fn capacity_bytes(&self) -> usize {
        self.kv_capacity_bytes() + self.inputs.capacity() * std::mem::size_of::<f32>()
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
        self.inputs.reserve(extra * self.hidden);
    }

    /// Reserves exactly `extra` more positions (no doubling): a request's whole need, up front, so
    /// that the memory budget's estimate is what is allocated.
    pub fn reserve_exact(&mut self, extra: usize) {
        for b in self.k.iter_mut().chain(&mut self.v) {
            b.reserve_exact(extra * self.kv_dim);
        }
        self.inputs.reserve_exact(extra * self.hidden);
    }
}

//! Sessions: one KV cache per conversation, kept between requests so a new turn prefills only new ids.
//! Generic over the cache type: the CPU's `KvCache` or a CUDA `Session` holding device memory.
//! Each remembers when it was last used, for evicting the least recently used under memory pressure.
use crate::error::Result;
use std::collections::HashMap;

pub struct Sessions<C> {
    caches: HashMap<String, (C, u64)>,
    /// Ticks up at every use: a session's value is the tick of its last use.
    clock: u64,
}

impl<C> Default for Sessions<C> {
    fn default() -> Self {
        Sessions { caches: HashMap::new(), clock: 0 }
    }
}

impl<C> Sessions<C> {
    fn tick(&mut self) -> u64 {
        self.clock += 1;
        self.clock
    }

    /// The session's cache, created by `make` on first use.
    pub fn get_or_create(&mut self, name: &str, make: impl FnOnce() -> Result<C>) -> Result<&mut C> {
        let now = self.tick();
        if !self.caches.contains_key(name) {
            let cache = make()?;
            self.caches.insert(name.to_string(), (cache, now));
        }
        let entry = self.caches.get_mut(name).expect("inserted above");
        entry.1 = now;
        Ok(&mut entry.0)
    }

    /// The session's cache taken out (created by `make` on first use), to be `put` back when the
    /// request that uses it ends: while it is out, the session is busy.
    pub fn take_or_create(&mut self, name: &str, make: impl FnOnce() -> Result<C>) -> Result<C> {
        match self.caches.remove(name) {
            Some((c, _)) => Ok(c),
            None => make(),
        }
    }

    /// Returns a cache taken out, as the most recently used.
    pub fn put(&mut self, name: &str, cache: C) {
        let now = self.tick();
        self.caches.insert(name.to_string(), (cache, now));
    }

    pub fn close(&mut self, name: &str) -> bool {
        self.caches.remove(name).is_some()
    }

    pub fn clear(&mut self) {
        self.caches.clear();
    }

    /// The idle sessions (those not taken out) with their caches, least recently used first.
    pub fn least_recent_first(&mut self) -> Vec<(&str, &mut C)> {
        let mut all: Vec<(&String, &mut (C, u64))> = self.caches.iter_mut().collect();
        all.sort_by_key(|e| e.1 .1);
        all.into_iter().map(|(name, e)| (name.as_str(), &mut e.0)).collect()
    }

    pub fn get(&self, name: &str) -> Option<&C> {
        self.caches.get(name).map(|e| &e.0)
    }

    /// Every idle session's cache, in no order.
    pub fn caches(&self) -> impl Iterator<Item = &C> {
        self.caches.values().map(|e| &e.0)
    }
}

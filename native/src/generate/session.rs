//! Sessions: one KV cache per conversation, kept between requests so a new turn prefills only new ids.
//! Generic over the cache type: the CPU's `KvCache` or a CUDA `Session` holding device memory.
use crate::error::Result;
use std::collections::HashMap;

pub struct Sessions<C> {
    caches: HashMap<String, C>,
}

impl<C> Default for Sessions<C> {
    fn default() -> Self {
        Sessions { caches: HashMap::new() }
    }
}

impl<C> Sessions<C> {
    /// The session's cache, created by `make` on first use.
    pub fn get_or_create(&mut self, name: &str, make: impl FnOnce() -> Result<C>) -> Result<&mut C> {
        if !self.caches.contains_key(name) {
            let cache = make()?;
            self.caches.insert(name.to_string(), cache);
        }
        Ok(self.caches.get_mut(name).expect("inserted above"))
    }

    /// The session's cache taken out (created by `make` on first use), to be `put` back when the
    /// request that uses it ends: while it is out, the session is busy.
    pub fn take_or_create(&mut self, name: &str, make: impl FnOnce() -> Result<C>) -> Result<C> {
        match self.caches.remove(name) {
            Some(c) => Ok(c),
            None => make(),
        }
    }

    pub fn put(&mut self, name: &str, cache: C) {
        self.caches.insert(name.to_string(), cache);
    }

    pub fn close(&mut self, name: &str) -> bool {
        self.caches.remove(name).is_some()
    }

    pub fn clear(&mut self) {
        self.caches.clear();
    }
}

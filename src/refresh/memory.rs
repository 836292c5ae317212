//! The in-process store: one replica, bounded.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::store::{RecordStore, StoreError, StoreFuture};

/// A [`RecordStore`] in this process's memory: the default, for one process.
///
/// Bounded: at most [`MemoryStore::max_entries`] live entries (default
/// [`MemoryStore::DEFAULT_MAX_ENTRIES`]); expired entries are swept as writes come, and a write
/// to a full store fails (the exchange then goes on without a record, as it would without the
/// store) rather than evicting a live record. Replicas and Lambda instances each have their own:
/// a retry that lands on another one is not covered; use the Redis store there.
#[derive(Clone, Debug)]
pub struct MemoryStore {
    inner: Arc<Mutex<Entries>>,
    max_entries: usize,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<String, (Vec<u8>, Instant)>,
    writes_since_sweep: usize,
}

impl Entries {
    fn live(&mut self, key: &str, now: Instant) -> Option<&Vec<u8>> {
        if self.map.get(key).is_some_and(|(_, expiry)| *expiry <= now) {
            self.map.remove(key);
        }
        self.map.get(key).map(|(value, _)| value)
    }

    /// Makes room for one more entry: sweeps the expired ones every so often, and whenever the
    /// map is full.
    fn room(&mut self, now: Instant, max: usize) -> Result<(), StoreError> {
        self.writes_since_sweep += 1;
        if self.map.len() >= max || self.writes_since_sweep >= 1024 {
            self.map.retain(|_, (_, expiry)| *expiry > now);
            self.writes_since_sweep = 0;
        }
        if self.map.len() >= max {
            return Err(StoreError::new(format!(
                "memory store full ({max} entries)"
            )));
        }
        Ok(())
    }
}

impl MemoryStore {
    /// The default bound on live entries: 100 000 (a record is about a kilobyte).
    pub const DEFAULT_MAX_ENTRIES: usize = 100_000;

    /// An empty store holding at most [`MemoryStore::DEFAULT_MAX_ENTRIES`] entries.
    pub fn new() -> Self {
        MemoryStore {
            inner: Arc::default(),
            max_entries: Self::DEFAULT_MAX_ENTRIES,
        }
    }

    /// Sets the bound on live entries.
    pub fn max_entries(mut self, max: usize) -> Self {
        self.max_entries = max.max(1);
        self
    }

    /// The number of entries held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether the store holds no entry.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Entries> {
        // A panic while holding the lock leaves a consistent map: every operation is a single
        // insert, remove or retain.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordStore for MemoryStore {
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>> {
        let value = self.lock().live(key, Instant::now()).cloned();
        Box::pin(async move { Ok(value) })
    }

    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()> {
        let now = Instant::now();
        let mut entries = self.lock();
        let result = if entries.live(key, now).is_some() {
            Ok(())
        } else {
            entries.room(now, self.max_entries)
        }
        .map(|()| {
            entries
                .map
                .insert(key.to_owned(), (value.to_vec(), now + ttl));
        });
        drop(entries);
        Box::pin(async move { result })
    }

    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool> {
        let now = Instant::now();
        let mut entries = self.lock();
        let result = if entries.live(key, now).is_some() {
            Ok(false)
        } else {
            entries.room(now, self.max_entries).map(|()| {
                entries
                    .map
                    .insert(key.to_owned(), (value.to_vec(), now + ttl));
                true
            })
        };
        drop(entries);
        Box::pin(async move { result })
    }

    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()> {
        self.lock().map.remove(key);
        Box::pin(async move { Ok(()) })
    }

    fn describe(&self) -> String {
        format!(
            "memory (this process only, at most {} entries)",
            self.max_entries
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_if_absent_sets_once_until_the_entry_expires() {
        let store = MemoryStore::new();
        let ttl = Duration::from_millis(40);
        assert!(store.set_if_absent("k", b"a", ttl).await.unwrap());
        assert!(!store.set_if_absent("k", b"b", ttl).await.unwrap());
        assert_eq!(store.get("k").await.unwrap().as_deref(), Some(&b"a"[..]));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert_eq!(store.get("k").await.unwrap(), None);
        assert!(store.set_if_absent("k", b"c", ttl).await.unwrap());
        store.delete("k").await.unwrap();
        assert_eq!(store.get("k").await.unwrap(), None);
    }

    #[tokio::test]
    async fn a_full_store_refuses_new_keys_and_makes_room_from_expired_ones() {
        let store = MemoryStore::new().max_entries(2);
        let short = Duration::from_millis(30);
        let long = Duration::from_secs(60);
        store.set("a", b"1", short).await.unwrap();
        store.set("b", b"1", long).await.unwrap();
        assert!(store.set_if_absent("c", b"1", long).await.is_err());
        // Replacing a live key needs no room.
        store.set("b", b"2", long).await.unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(store.set_if_absent("c", b"1", long).await.unwrap());
        assert_eq!(store.len(), 2);
    }
}

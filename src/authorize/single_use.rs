//! Single use of sealed states: each state `/authorize` seals is accepted once at `/callback`.
//!
//! A sealed state is stateless and would otherwise open as often as it is presented until it
//! expires; in implicit mode every presentation made an upstream token call carrying the
//! bridge's client secret. Each state carries a random id; [`NonceCache::claim`] records it
//! until the state expires, and a second claim is refused.
//!
//! [`MemoryNonceCache`] (the default) holds the ids of one process: replicas behind a load
//! balancer each refuse their own replays. [`StoreNonceCache`] keeps them in a
//! [`RecordStore`] the replicas share (the refresh records' store, e.g. Redis), so a state is
//! accepted once across all of them.
//!
//! A cache that cannot answer (full, or its store unreachable) never blocks a link: `/callback`
//! accepts the state (it opened, so it is genuine and unexpired), logs a warning and reports
//! the state verdict `ok_unchecked`, which the trace and the metrics count.

use std::collections::{HashSet, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::refresh::RecordStore;

/// The future of a [`NonceCache::claim`].
pub type ClaimFuture = Pin<Box<dyn Future<Output = Result<Claim, ClaimError>> + Send>>;

/// Whether a state's id was seen before.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claim {
    /// The first use: go on.
    First,
    /// Used before: refuse.
    Replayed,
}

/// The cache could not say (full, or a shared store unreachable). `/callback` answers Alexa
/// `server_error` (never a replay verdict, never `invalid_grant`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClaimError {
    reason: &'static str,
}

impl ClaimError {
    /// An error with a fixed reason.
    pub const fn new(reason: &'static str) -> Self {
        ClaimError { reason }
    }

    /// The reason.
    pub fn reason(&self) -> &'static str {
        self.reason
    }
}

impl fmt::Display for ClaimError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason)
    }
}

impl std::error::Error for ClaimError {}

/// Records the ids of used states until they expire.
pub trait NonceCache: Send + Sync + 'static {
    /// Records `id` (a random id, at most 64 bytes) as used until `expires_at` (Unix seconds)
    /// and says whether it was already recorded. Must be atomic: of two concurrent claims of
    /// one id, exactly one is [`Claim::First`].
    fn claim(&self, id: &[u8], expires_at: u64) -> ClaimFuture;
}

/// A [`NonceCache`] in this process's memory, bounded: at most `capacity` unexpired ids; when
/// it is full of unexpired ids a claim is an error rather than an eviction (an evicted id could
/// be replayed).
pub struct MemoryNonceCache {
    capacity: usize,
    inner: Mutex<Ids>,
}

#[derive(Default)]
struct Ids {
    set: HashSet<Vec<u8>>,
    // In claim order, which is expiry order while the sealer's lifetime does not change; an id
    // with a later expiry ahead of earlier ones is only kept a little longer than needed.
    order: VecDeque<(u64, Vec<u8>)>,
}

impl MemoryNonceCache {
    /// The default capacity: 65,536 links in progress within a state's lifetime (a few MB).
    pub const DEFAULT_CAPACITY: usize = 65_536;

    /// A cache of at most `capacity` ids.
    pub fn new(capacity: usize) -> Self {
        MemoryNonceCache {
            capacity,
            inner: Mutex::new(Ids::default()),
        }
    }

    fn claim_at(&self, id: &[u8], expires_at: u64, now: u64) -> Result<Claim, ClaimError> {
        let mut ids = match self.inner.lock() {
            Ok(ids) => ids,
            Err(poisoned) => poisoned.into_inner(),
        };
        while ids.order.front().is_some_and(|(expiry, _)| *expiry <= now) {
            if let Some((_, old)) = ids.order.pop_front() {
                ids.set.remove(&old);
            }
        }
        if ids.set.contains(id) {
            return Ok(Claim::Replayed);
        }
        if ids.set.len() >= self.capacity {
            return Err(ClaimError::new("too many links in progress"));
        }
        ids.set.insert(id.to_vec());
        ids.order.push_back((expires_at, id.to_vec()));
        Ok(Claim::First)
    }

    /// The number of ids held (expired ones included until the next claim).
    pub fn len(&self) -> usize {
        self.inner.lock().map_or(0, |ids| ids.set.len())
    }

    /// Whether no id is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Default for MemoryNonceCache {
    fn default() -> Self {
        Self::new(Self::DEFAULT_CAPACITY)
    }
}

impl fmt::Debug for MemoryNonceCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MemoryNonceCache")
            .field("capacity", &self.capacity)
            .field("len", &self.len())
            .finish()
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

impl NonceCache for MemoryNonceCache {
    fn claim(&self, id: &[u8], expires_at: u64) -> ClaimFuture {
        Box::pin(std::future::ready(self.claim_at(
            id,
            expires_at,
            unix_now(),
        )))
    }
}

/// A [`NonceCache`] in a [`RecordStore`] shared by replicas: an id is claimed with the store's
/// set-if-absent (Redis `SET NX PX`), kept until its state expires. Give it the store of the
/// refresh records ([`RefreshRecords::store`](crate::refresh::RefreshRecords::store)) so one
/// Redis serves both. Store faults are [`ClaimError`]s, which never block a link.
#[derive(Clone, Debug)]
pub struct StoreNonceCache {
    store: Arc<dyn RecordStore>,
}

impl StoreNonceCache {
    /// The cache in `store`.
    pub fn new(store: Arc<dyn RecordStore>) -> Self {
        StoreNonceCache { store }
    }

    /// The store key of a state id: the id is random and says nothing of the user.
    fn key(id: &[u8]) -> String {
        format!("alb:state-used:{}", URL_SAFE_NO_PAD.encode(id))
    }
}

impl NonceCache for StoreNonceCache {
    fn claim(&self, id: &[u8], expires_at: u64) -> ClaimFuture {
        let store = Arc::clone(&self.store);
        let key = Self::key(id);
        let ttl = Duration::from_secs(expires_at.saturating_sub(unix_now()).max(1));
        Box::pin(async move {
            match store.set_if_absent(&key, b"1", ttl).await {
                Ok(true) => Ok(Claim::First),
                Ok(false) => Ok(Claim::Replayed),
                Err(_) => Err(ClaimError::new("the shared store did not answer")),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_is_claimed_once_until_it_expires() {
        let cache = MemoryNonceCache::new(10);
        assert_eq!(cache.claim_at(b"a", 100, 50), Ok(Claim::First));
        assert_eq!(cache.claim_at(b"a", 100, 60), Ok(Claim::Replayed));
        assert_eq!(cache.claim_at(b"b", 100, 60), Ok(Claim::First));
        // Once expired the id is forgotten (the state it belongs to no longer opens anyway).
        assert_eq!(cache.claim_at(b"c", 200, 100), Ok(Claim::First));
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn a_full_cache_refuses_rather_than_forgets() {
        let cache = MemoryNonceCache::new(2);
        assert_eq!(cache.claim_at(b"a", 100, 0), Ok(Claim::First));
        assert_eq!(cache.claim_at(b"b", 100, 0), Ok(Claim::First));
        assert!(cache.claim_at(b"c", 100, 0).is_err());
        // The ids it holds are still refused, and expiry makes room.
        assert_eq!(cache.claim_at(b"a", 100, 0), Ok(Claim::Replayed));
        assert_eq!(cache.claim_at(b"c", 200, 100), Ok(Claim::First));
    }

    #[tokio::test]
    async fn the_store_cache_claims_an_id_once_across_its_clones() {
        let store: Arc<dyn RecordStore> = Arc::new(crate::refresh::MemoryStore::new());
        let (a, b) = (
            StoreNonceCache::new(Arc::clone(&store)),
            StoreNonceCache::new(store),
        );
        let expiry = unix_now() + 60;
        assert_eq!(a.claim(b"id-1", expiry).await, Ok(Claim::First));
        assert_eq!(b.claim(b"id-1", expiry).await, Ok(Claim::Replayed));
        assert_eq!(b.claim(b"id-2", expiry).await, Ok(Claim::First));
    }

    #[tokio::test]
    async fn concurrent_claims_of_one_id_give_one_first() {
        let cache = std::sync::Arc::new(MemoryNonceCache::default());
        let claims: Vec<_> = (0..16)
            .map(|_| {
                let cache = cache.clone();
                tokio::spawn(async move { cache.claim(b"same", u64::MAX).await })
            })
            .collect();
        let mut first = 0;
        for claim in claims {
            if claim.await.unwrap() == Ok(Claim::First) {
                first += 1;
            }
        }
        assert_eq!(first, 1);
    }
}

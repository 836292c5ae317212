//! The store the records live in: a small async key-value trait.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// The future of a [`RecordStore`] operation. Boxed: the trait stays object-safe (the layer
/// holds an `Arc<dyn RecordStore>`), and one allocation is noise next to a store round trip.
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// Where refresh records live: a key-value store with expiry, shared by every replica that
/// must agree (see the [module docs](super)).
///
/// Keys are short ASCII strings (`alb:refresh:rec:<keyed hash>`); values are opaque bytes, the
/// records already encrypted. Every value is written with an expiry and must disappear by
/// itself. An error is a fault of the store: the layer then exchanges as it would without
/// records, and never answers `invalid_grant` because of it.
///
/// `set_if_absent` with an expiry is also what a single-use check needs (a nonce is new exactly
/// when it could be set), so other parts of a bridge can share the same store.
pub trait RecordStore: fmt::Debug + Send + Sync + 'static {
    /// The value under `key`, if present and not expired.
    fn get<'a>(&'a self, key: &'a str) -> StoreFuture<'a, Option<Vec<u8>>>;

    /// Sets `key` to `value` for `ttl`, replacing any value.
    fn set<'a>(&'a self, key: &'a str, value: &'a [u8], ttl: Duration) -> StoreFuture<'a, ()>;

    /// Sets `key` to `value` for `ttl` only if `key` has no live value (Redis `SET NX PX`);
    /// `true` when it was set. The claim that makes one upstream call per token, and the
    /// single-use check of a nonce.
    fn set_if_absent<'a>(
        &'a self,
        key: &'a str,
        value: &'a [u8],
        ttl: Duration,
    ) -> StoreFuture<'a, bool>;

    /// Removes `key` (a released claim); removing an absent key is not an error.
    fn delete<'a>(&'a self, key: &'a str) -> StoreFuture<'a, ()>;

    /// What the startup log says about the store: its kind and address, never a password.
    fn describe(&self) -> String;
}

/// A fault of a [`RecordStore`]: unreachable, timed out, full, or an unexpected reply. Its text
/// names the fault only, never a key's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError {
    message: String,
}

impl StoreError {
    /// A fault described by `message` (which must not carry a secret).
    pub fn new(message: impl Into<String>) -> Self {
        StoreError {
            message: message.into(),
        }
    }
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refresh record store: {}", self.message)
    }
}

impl std::error::Error for StoreError {}

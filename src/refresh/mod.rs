//! Refresh records: rotation-safe, idempotent refresh, so that no lost, late, repeated or
//! concurrent refresh unlinks a user.
//!
//! # Why
//!
//! Upstreams that rotate refresh tokens (Salesforce with rotation on, Okta, Auth0, Cognito,
//! oidc-provider, every OAuth 2.1 server) hand out a new refresh token R2 with each refresh and
//! treat a second use of the old one, R1, as theft: Salesforce then revokes "the current refresh
//! token and all associated access tokens". So when an answer never reaches Alexa (the upstream
//! answered after the bridge's timeout, Alexa's connection dropped, a Lambda instance froze),
//! Alexa retries with R1, the upstream revokes the grant, and the user must link again.
//!
//! # What the record does
//!
//! [`RecordRefreshLayer`] sits between the two layers of the exchange (inside
//! [`NormalizeTokenRequest`](crate::token_request::NormalizeTokenRequest), outside
//! [`RewriteTokenResponse`](crate::token_response::RewriteTokenResponse)); add it with
//! [`TokenExchangeLayer::refresh_records`](crate::TokenExchangeLayer::refresh_records). For each
//! refresh with a token R1 (and each code exchange with a code C):
//!
//! 1. **Idempotent.** The answer Alexa was given (the rewritten 200 JSON, byte for byte) is kept
//!    as a *record* for the grace window ([`RefreshRecords::grace`]). A later request with R1
//!    gets that same answer from the record without calling the upstream, as long as the
//!    answer's refresh token R2 has not been used. Once a refresh with R2 has arrived, R1 is a
//!    replay: it is refused with `invalid_grant` without calling the upstream. Forwarding it
//!    would let a rotating upstream judge it, and it would judge it theft and revoke the grant
//!    Alexa now holds through R2: refusing keeps the live link alive and tells the replayer
//!    what the upstream would. When the upstream does not rotate (no refresh token in its
//!    answer, or the same one) there is no successor: the record answers repeats within the
//!    window and never refuses anything. Only tokens are recorded; an error answer is not, and
//!    the next request goes upstream again. A code exchange is recorded the same way (keyed by
//!    the code and the client id), its successor being the refresh token it handed out.
//! 2. **Never abandoned.** The upstream call runs on its own task, bounded by
//!    [`RefreshRecords::completion_timeout`] (30 s by default), not by Alexa's deadline. Alexa's
//!    answer is awaited for [`RefreshRecords::answer_deadline`] (4 s by default, inside Alexa's
//!    4.5 s); past it Alexa gets a 504 `temporarily_unavailable` JSON (never `invalid_grant`),
//!    while the call goes on and its answer is recorded for Alexa's retry. The same holds when
//!    Alexa hangs up. The bridge never retries an upstream call by itself.
//! 3. **One upstream call per token.** A claim with an expiry in the store makes concurrent
//!    requests with the same R1, on one process or on replicas sharing the store, wait for the
//!    one call's record (polling, until their own answer deadline) and answer the same. A
//!    claimant that dies leaves a claim that expires after the completion timeout.
//!
//! # The grace window, and its security trade-off
//!
//! Default: [`RefreshRecords::DEFAULT_GRACE`], 300 s. Retry grace periods elsewhere are at most
//! a minute (AWS Cognito's `RetryGracePeriodSeconds` ≤ 60 s, Okta's grace period, 45 s in an
//! MCP OAuth proxy); they cover a client that retries at once, but not an answer that was lost
//! and retried later, and a lost answer here may be recorded only when the upstream finally
//! answers, up to the 30 s completion timeout after Alexa's request. Alexa's retry timing is
//! not documented; five minutes covers the completion timeout ten times over and a retry
//! minutes later, while keeping the window in which a record exists short.
//!
//! The trade-off: within the window, anyone presenting R1 gets the recorded answer (the access
//! token and R2) as long as R2 is unused. A thief who has R1 gets tokens only in that window and
//! only until Alexa's next refresh uses R2; after that R1 is refused. Without records, the same
//! thief would get fresh tokens from an upstream that does not rotate, or, from one that
//! rotates, a revoked grant for the user. A longer window covers later retries and widens that
//! exposure; `--refresh-grace 0` is not offered: turn the records off instead.
//!
//! # Nothing readable at rest
//!
//! A record is stored under a keyed hash of the token (HMAC-SHA256 under a key derived from the
//! state key the replicas share, [`RefreshRecords::index_key`]), and its content is encrypted
//! with XChaCha20-Poly1305 under a key derived from the token itself: a dump of the store shows
//! no token, no code and no answer, and without R1 nobody can open R1's record. The successor
//! is named in the record by its keyed hash only; "R2 was used" is a marker under R2's keyed
//! hash.
//!
//! # Store faults never unlink
//!
//! A store that fails or does not answer in time ([`RecordStore`] errors) makes the exchange go
//! on as it would without records: the upstream is called, its answer relayed. The fault is
//! logged at WARN on the target `account_link_bridge::refresh` (without a secret) and counted;
//! the bridge never answers `invalid_grant` because of the store. One case is answered 503
//! `temporarily_unavailable` instead: a record exists but the store fails while telling whether
//! its successor was used; neither replaying (tokens to a possible thief) nor calling the
//! upstream (a reuse, a revocation) would be safe, and Alexa retries.
//!
//! # Stores
//!
//! [`MemoryStore`] (one process, bounded) is the default; [`RedisStore`] (feature `redis`)
//! serves replicas behind a load balancer and Lambda instances, through any Redis-protocol
//! service. Without a shared store, each replica or Lambda instance keeps its own records, and
//! a retry that lands on another one is not covered.
//!
//! # Observing it
//!
//! Each answer carries a [`RefreshReport`]; the exchange trace shows it as `refresh`
//! (`refresh_replayed`, `refresh_recorded`, `refresh_replay_refused`, `refresh_answer_pending`)
//! and `refresh_store_errors`. An answer recorded after Alexa's request ended is logged as
//! `refresh_late_answer_kept` at INFO. With the `metrics` feature:
//! `account_link_bridge_refresh_records_total{event}` and
//! `account_link_bridge_refresh_store_errors_total{op}`.
//!
//! ```
//! use std::time::Duration;
//! use account_link_bridge::refresh::{MemoryStore, RefreshRecords};
//! use account_link_bridge::{Provider, TokenExchangeLayer};
//!
//! let records = RefreshRecords::new(MemoryStore::new())
//!     .index_key(b"the state key every replica shares, 32+ bytes")
//!     .grace(Duration::from_secs(300));
//! let layer = TokenExchangeLayer::new(Provider::salesforce()).refresh_records(records);
//! # let _ = layer;
//! ```

mod exchange;
mod layer;
mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis;
mod report;
mod settings;
mod store;

pub use self::layer::{RecordRefresh, RecordRefreshLayer, ResponseFuture};
pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use self::report::{RefreshEvent, RefreshReport};
pub use self::settings::RefreshRecords;
pub use self::store::{RecordStore, StoreError, StoreFuture};

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
//! [`NormalizeTokenRequest`](crate::NormalizeTokenRequest), outside
//! [`RewriteTokenResponse`](crate::RewriteTokenResponse)); add it with
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

mod memory;
mod record;
#[cfg(feature = "redis")]
mod redis;
mod store;

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hmac::{Hmac, Mac};
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA};
use http::{HeaderValue, Request, Response, StatusCode};
use pin_project_lite::pin_project;
use sha2::Sha256;
use tokio::time::Instant;
use tower_layer::Layer;
use tower_service::Service;

pub use self::memory::MemoryStore;
#[cfg(feature = "redis")]
pub use self::redis::RedisStore;
pub use self::store::{RecordStore, StoreError, StoreFuture};

use self::record::{verdict, Grant, Record, Subject, TokenId, Verdict};
use crate::body::FullBody;
use crate::{ErrorCode, GrantType, OAuthError, RewriteReport, TokenRequest};

/// How the bridge keeps refresh records: the store, the keys and the windows. Cheap to clone.
/// See the [module docs](self).
#[derive(Clone)]
pub struct RefreshRecords {
    settings: Arc<Settings>,
}

struct Settings {
    store: Arc<dyn RecordStore>,
    index_key: [u8; 32],
    grace: Duration,
    answer_deadline: Duration,
    completion_timeout: Duration,
    poll: Duration,
}

impl RefreshRecords {
    /// The default grace window: 300 s (the [module docs](self#the-grace-window-and-its-security-trade-off) say why).
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);
    /// The default deadline of Alexa's answer: 4 s, inside Alexa's 4.5 s.
    pub const DEFAULT_ANSWER_DEADLINE: Duration = Duration::from_secs(4);
    /// The default bound on one upstream call run to completion: 30 s.
    pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(30);

    /// Records in `store`, under a random per-process index key (give replicas the same key
    /// with [`RefreshRecords::index_key`]).
    pub fn new(store: impl RecordStore) -> Self {
        Self::with_shared_store(Arc::new(store))
    }

    /// Records in a store shared with other parts of the bridge.
    pub fn with_shared_store(store: Arc<dyn RecordStore>) -> Self {
        let mut index_key = [0u8; 32];
        getrandom::getrandom(&mut index_key).expect("the operating system's random source works");
        RefreshRecords {
            settings: Arc::new(Settings {
                store,
                index_key,
                grace: Self::DEFAULT_GRACE,
                answer_deadline: Self::DEFAULT_ANSWER_DEADLINE,
                completion_timeout: Self::DEFAULT_COMPLETION_TIMEOUT,
                poll: Duration::from_millis(25),
            }),
        }
    }

    fn edit(mut self, edit: impl FnOnce(&mut Settings)) -> Self {
        match Arc::get_mut(&mut self.settings) {
            Some(settings) => edit(settings),
            None => {
                let s = &*self.settings;
                let mut copy = Settings {
                    store: s.store.clone(),
                    index_key: s.index_key,
                    grace: s.grace,
                    answer_deadline: s.answer_deadline,
                    completion_timeout: s.completion_timeout,
                    poll: s.poll,
                };
                edit(&mut copy);
                self.settings = Arc::new(copy);
            }
        }
        self
    }

    /// Derives the index key (which names records in the store) from `secret`: give every
    /// replica sharing a store the same secret, e.g. the state key (`--state-key`). The key is
    /// HMAC-SHA256(`secret`, a fixed label), so the secret itself is not used for another
    /// purpose.
    pub fn index_key(self, secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"account-link-bridge/refresh-record/index/v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        self.edit(|s| s.index_key = key)
    }

    /// How long a record answers repeats ([`RefreshRecords::DEFAULT_GRACE`]).
    pub fn grace(self, grace: Duration) -> Self {
        self.edit(|s| s.grace = grace.max(Duration::from_millis(1)))
    }

    /// How long Alexa's request waits for its answer before a 504 `temporarily_unavailable`
    /// ([`RefreshRecords::DEFAULT_ANSWER_DEADLINE`]; keep it below Alexa's 4.5 s).
    pub fn answer_deadline(self, deadline: Duration) -> Self {
        self.edit(|s| s.answer_deadline = deadline)
    }

    /// How long one upstream call may run to completion after Alexa's deadline
    /// ([`RefreshRecords::DEFAULT_COMPLETION_TIMEOUT`]). An [`Upstream`](crate::upstream::Upstream)
    /// client's own timeout should be at least this, or it cuts the call first.
    pub fn completion_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| s.completion_timeout = timeout)
    }

    /// The store, to share it (e.g. for single-use checks with
    /// [`RecordStore::set_if_absent`]).
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.settings.store
    }

    /// One line for the startup log: the store (without a password) and the windows.
    pub fn describe(&self) -> String {
        let s = &*self.settings;
        format!(
            "refresh records in {}, grace {} s, answer deadline {} ms, completion timeout {} s",
            s.store.describe(),
            s.grace.as_secs_f64(),
            s.answer_deadline.as_millis(),
            s.completion_timeout.as_secs_f64()
        )
    }
}

impl fmt::Debug for RefreshRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.settings;
        f.debug_struct("RefreshRecords")
            .field("store", &s.store)
            .field("grace", &s.grace)
            .field("answer_deadline", &s.answer_deadline)
            .field("completion_timeout", &s.completion_timeout)
            .finish_non_exhaustive()
    }
}

/// What the refresh records did for one exchange; in every answer's extensions when records
/// are on, for diagnostics.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshReport {
    /// What happened, if anything did.
    pub event: Option<RefreshEvent>,
    /// Store operations that failed during the exchange (each logged at WARN).
    pub store_errors: u32,
}

/// One thing the refresh records did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshEvent {
    /// The recorded answer was given again, without calling the upstream.
    Replayed,
    /// The upstream's token answer was recorded.
    Recorded,
    /// A replay of a rotated token whose successor was used: refused with `invalid_grant`.
    ReplayRefused,
    /// Alexa's deadline passed before the upstream answered (or while another request's call
    /// was running): answered 504, and the answer will be recorded for the retry.
    AnswerPending,
    /// An answer recorded after Alexa's request ended (deadline passed, or Alexa hung up).
    LateAnswerKept,
}

impl RefreshEvent {
    /// The event's name, as in the trace and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            RefreshEvent::Replayed => "refresh_replayed",
            RefreshEvent::Recorded => "refresh_recorded",
            RefreshEvent::ReplayRefused => "refresh_replay_refused",
            RefreshEvent::AnswerPending => "refresh_answer_pending",
            RefreshEvent::LateAnswerKept => "refresh_late_answer_kept",
        }
    }

    fn label(self) -> &'static str {
        self.as_str().trim_start_matches("refresh_")
    }
}

/// Layer that keeps refresh records in front of the answer rewrite: see the
/// [module docs](self). Without records it passes every request through untouched.
#[derive(Clone, Debug, Default)]
pub struct RecordRefreshLayer {
    records: Option<RefreshRecords>,
}

impl RecordRefreshLayer {
    /// The layer keeping `records`.
    pub fn new(records: RefreshRecords) -> Self {
        RecordRefreshLayer {
            records: Some(records),
        }
    }

    /// The layer that keeps nothing: every request passes through.
    pub fn off() -> Self {
        RecordRefreshLayer { records: None }
    }
}

impl<S> Layer<S> for RecordRefreshLayer {
    type Service = RecordRefresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRefresh {
            inner,
            records: self.records.clone(),
        }
    }
}

/// Middleware that keeps refresh records: see the [module docs](self).
#[derive(Clone)]
pub struct RecordRefresh<S> {
    inner: S,
    records: Option<RefreshRecords>,
}

impl<S> RecordRefresh<S> {
    /// Wraps `inner`, keeping `records`.
    pub fn new(inner: S, records: RefreshRecords) -> Self {
        RecordRefreshLayer::new(records).layer(inner)
    }

    /// Keeps these records from now on (or none).
    #[cfg(feature = "client")]
    pub fn set_records(&mut self, records: Option<RefreshRecords>) {
        self.records = records;
    }

    crate::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RecordRefresh<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRefresh")
            .field("inner", &self.inner)
            .field("records", &self.records)
            .finish()
    }
}

impl<S> Service<Request<FullBody>> for RecordRefresh<S>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<FullBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<FullBody>) -> Self::Future {
        let Some(records) = &self.records else {
            return ResponseFuture {
                kind: Kind::Through {
                    future: self.inner.call(request),
                },
            };
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            kind: Kind::Recording {
                future: Box::pin(exchange(records.settings.clone(), inner, request)),
            },
        }
    }
}

type Recording<E> = Pin<Box<dyn Future<Output = Result<Response<FullBody>, E>> + Send>>;

pin_project! {
    /// The future of [`RecordRefresh`]: the inner call itself when records are off; with
    /// records, a boxed future (store round trips and a task; one allocation is noise there).
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Through { #[pin] future: F },
        Recording { future: Recording<E> },
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<FullBody>, E>>,
{
    type Output = Result<Response<FullBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Through { future } => future.poll(cx),
            KindProj::Recording { future } => future.as_mut().poll(cx),
        }
    }
}

/// The store keys of one token: its record, its claim, and the marker that it was used.
struct Keys {
    record: String,
    claim: String,
}

impl Keys {
    fn of(id: TokenId) -> Self {
        let id = id.to_key();
        Keys {
            record: format!("alb:refresh:rec:{id}"),
            claim: format!("alb:refresh:claim:{id}"),
        }
    }
}

fn used_key(id: TokenId) -> String {
    format!("alb:refresh:used:{}", id.to_key())
}

impl Settings {
    /// One store operation; a fault is logged, counted, and returned as `Err(())`.
    async fn op<T>(
        &self,
        op: &'static str,
        future: StoreFuture<'_, T>,
        report: &mut RefreshReport,
    ) -> Result<T, ()> {
        future.await.map_err(|error| {
            report.store_errors += 1;
            store_fault(op, &error);
        })
    }

    fn claim_ttl(&self) -> Duration {
        self.completion_timeout + Duration::from_secs(5)
    }
}

fn store_fault(op: &'static str, error: &StoreError) {
    tracing::warn!(
        target: "account_link_bridge::refresh",
        op,
        error = %error,
        "refresh record store failed: exchanging without a record"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!("account_link_bridge_refresh_store_errors_total", "op" => op).increment(1);
}

fn count(event: RefreshEvent) {
    #[cfg(feature = "metrics")]
    metrics::counter!("account_link_bridge_refresh_records_total", "event" => event.label())
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = event.label();
}

/// One exchange with records on: look the token up, answer from its record, or claim it and
/// call the upstream on a task of its own.
async fn exchange<S>(
    settings: Arc<Settings>,
    inner: S,
    request: Request<FullBody>,
) -> Result<Response<FullBody>, S::Error>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let deadline = Instant::now() + settings.answer_deadline;
    let token_request = request.extensions().get::<TokenRequest>();
    let grant_type = token_request.map(|r| r.grant_type().clone());
    let subject = token_request.and_then(|r| Subject::of(r, &settings.index_key));
    let mut report = RefreshReport::default();
    let Some(subject) = subject else {
        return call(settings, inner, request, None, false, deadline, report).await;
    };
    let store = settings.store.clone();
    let keys = Keys::of(subject.id);
    if subject.grant == Grant::Refresh {
        // Alexa presents R2 only once it holds the answer that carried it: from now on the
        // record of R1 refuses R1.
        let used = used_key(subject.id);
        let _ = settings
            .op(
                "mark_used",
                store.set(&used, b"1", settings.grace),
                &mut report,
            )
            .await;
    }
    loop {
        let Ok(found) = settings
            .op("get", store.get(&keys.record), &mut report)
            .await
        else {
            return call(
                settings,
                inner,
                request,
                Some(subject),
                false,
                deadline,
                report,
            )
            .await;
        };
        if let Some(sealed) = found {
            let Ok(record) = Record::open(&sealed, &subject) else {
                tracing::warn!(
                    target: "account_link_bridge::refresh",
                    "a refresh record did not open: exchanging without it"
                );
                return call(settings, inner, request, None, false, deadline, report).await;
            };
            return Ok(answer_from(&settings, record, grant_type, report).await);
        }
        let claim = store.set_if_absent(&keys.claim, b"1", settings.claim_ttl());
        match settings.op("claim", claim, &mut report).await {
            Err(()) => {
                return call(
                    settings,
                    inner,
                    request,
                    Some(subject),
                    false,
                    deadline,
                    report,
                )
                .await
            }
            Ok(true) => {
                // A record made between the look above and the claim (its claim released
                // since) must not be followed by a second upstream call with the same token.
                let again = settings
                    .op("get", store.get(&keys.record), &mut report)
                    .await;
                if let Ok(Some(_)) = again {
                    let _ = settings
                        .op("release", store.delete(&keys.claim), &mut report)
                        .await;
                    continue;
                }
                return call(
                    settings,
                    inner,
                    request,
                    Some(subject),
                    true,
                    deadline,
                    report,
                )
                .await;
            }
            Ok(false) => {
                // Another request (here or on another replica) is calling the upstream with
                // this token: wait for its record, within this request's deadline.
                if Instant::now() + settings.poll >= deadline {
                    report.event = Some(RefreshEvent::AnswerPending);
                    count(RefreshEvent::AnswerPending);
                    let error = OAuthError::temporarily_unavailable(
                        StatusCode::GATEWAY_TIMEOUT,
                        "an exchange with the same token is in progress; retry shortly",
                    );
                    return Ok(answered(error, grant_type, report));
                }
                tokio::time::sleep(settings.poll).await;
            }
        }
    }
}

/// The answer a found record gives: the recorded one, or a refusal once its successor is used.
async fn answer_from(
    settings: &Settings,
    record: Record,
    grant_type: Option<GrantType>,
    mut report: RefreshReport,
) -> Response<FullBody> {
    let successor_used = match record.successor {
        None => false,
        Some(successor) => {
            let key = used_key(successor);
            match settings
                .op("get_used", settings.store.get(&key), &mut report)
                .await
            {
                Ok(marker) => marker.is_some(),
                Err(()) => {
                    let error = OAuthError::temporarily_unavailable(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "the refresh record store is unavailable; retry shortly",
                    );
                    return answered(error, grant_type, report);
                }
            }
        }
    };
    match verdict(&record, successor_used) {
        Verdict::Replay => {
            report.event = Some(RefreshEvent::Replayed);
            count(RefreshEvent::Replayed);
            // The answer as it stands now: its expires_in lowered by the record's age.
            let elapsed_secs = record::now_ms().saturating_sub(record.recorded_at_ms) / 1000;
            let answer = match elapsed_secs {
                0 => record.answer,
                _ => crate::token_response::aged_answer(&record.answer, elapsed_secs)
                    .map_or(record.answer, Bytes::from),
            };
            let mut response = token_response(answer);
            let mut rewrite = RewriteReport::new(None);
            rewrite.grant_type = grant_type;
            response.extensions_mut().insert(rewrite);
            response.extensions_mut().insert(report);
            response
        }
        Verdict::Refuse => {
            report.event = Some(RefreshEvent::ReplayRefused);
            count(RefreshEvent::ReplayRefused);
            let error = OAuthError::new(ErrorCode::INVALID_GRANT, StatusCode::BAD_REQUEST)
                .with_description("the grant was rotated and its new token has been used");
            answered(error, grant_type, report)
        }
    }
}

/// An answer of the records' own, with the reports diagnostics read.
fn answered(
    error: OAuthError,
    grant_type: Option<GrantType>,
    report: RefreshReport,
) -> Response<FullBody> {
    let mut rewrite = RewriteReport::new(None);
    rewrite.grant_type = grant_type;
    rewrite.answered_error = Some(error.code().clone());
    let mut response: Response<FullBody> = error.into_response();
    response.extensions_mut().insert(rewrite);
    response.extensions_mut().insert(report);
    response
}

/// A recorded token answer, with the headers the response layer gives every token.
fn token_response(json: Bytes) -> Response<FullBody> {
    let length = json.len();
    let mut response = Response::new(FullBody::new(json));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, crate::json_content_type());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

/// Whether an answer of the response layer is a token: a 200 it did not turn into an error.
fn is_token(response: &Response<FullBody>) -> bool {
    response.status() == StatusCode::OK
        && response
            .extensions()
            .get::<RewriteReport>()
            .is_some_and(|r| r.answered_error.is_none())
}

/// Calls the upstream on a task of its own, bounded by the completion timeout, records a token
/// answer (when `subject` is known) and releases the claim (when `claimed`); Alexa's request
/// waits for it until `deadline`.
async fn call<S>(
    settings: Arc<Settings>,
    mut inner: S,
    request: Request<FullBody>,
    subject: Option<Subject>,
    claimed: bool,
    deadline: Instant,
    mut report: RefreshReport,
) -> Result<Response<FullBody>, S::Error>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    let grant_type = request
        .extensions()
        .get::<TokenRequest>()
        .map(|r| r.grant_type().clone());
    let (answer, answered_by) = tokio::sync::oneshot::channel();
    let completion = settings.completion_timeout;
    let answer_deadline = settings.answer_deadline;
    let future = inner.call(request);
    let task_grant = grant_type.clone();
    tokio::spawn(async move {
        let result = match tokio::time::timeout(completion, future).await {
            Ok(result) => result,
            Err(_) => Ok(answered(
                OAuthError::temporarily_unavailable(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!(
                        "upstream did not answer within {} ms",
                        completion.as_millis()
                    ),
                ),
                task_grant,
                RefreshReport::default(),
            )),
        };
        let mut task_report = RefreshReport::default();
        if let (Ok(response), Some(subject)) = (&result, &subject) {
            if is_token(response) {
                let answer = Bytes::copy_from_slice(response.body().as_bytes());
                let record = Record::of_answer(answer, subject, &settings.index_key);
                let key = Keys::of(subject.id).record;
                let sealed = record.seal(subject);
                let put = settings.store.set_if_absent(&key, &sealed, settings.grace);
                if let Ok(true) = settings.op("put", put, &mut task_report).await {
                    task_report.event = Some(RefreshEvent::Recorded);
                }
            }
        }
        if let (true, Some(subject)) = (claimed, &subject) {
            let key = Keys::of(subject.id).claim;
            let _ = settings
                .op("release", settings.store.delete(&key), &mut task_report)
                .await;
        }
        let recorded = task_report.event == Some(RefreshEvent::Recorded);
        if answer.send((result, task_report)).is_err() {
            if recorded {
                count(RefreshEvent::LateAnswerKept);
                tracing::info!(
                    target: "account_link_bridge::refresh",
                    event = RefreshEvent::LateAnswerKept.as_str(),
                    "an upstream answer that came after Alexa's request ended was recorded for its retry"
                );
            }
        } else if recorded {
            count(RefreshEvent::Recorded);
        }
    });
    match tokio::time::timeout_at(deadline, answered_by).await {
        Ok(Ok((result, task_report))) => result.map(|mut response| {
            report.event = task_report.event;
            report.store_errors += task_report.store_errors;
            response.extensions_mut().insert(report);
            response
        }),
        Ok(Err(_)) => Ok(answered(
            OAuthError::server_error("the upstream call ended without an answer"),
            grant_type,
            report,
        )),
        Err(_) => {
            report.event = Some(RefreshEvent::AnswerPending);
            count(RefreshEvent::AnswerPending);
            let error = OAuthError::temporarily_unavailable(
                StatusCode::GATEWAY_TIMEOUT,
                format!(
                    "upstream did not answer within {} ms; its answer is kept for the retry",
                    answer_deadline.as_millis()
                ),
            );
            Ok(answered(error, grant_type, report))
        }
    }
}

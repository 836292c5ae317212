//! Diagnostics: showing an operator why linking fails, without showing a secret.
//!
//! Alexa says only "We were unable to link … at this time". The bridge knows why, and this
//! module says it in one structured record per exchange:
//!
//! - [`RequestFacts`](crate::token_request::RequestFacts): what Alexa sent (body format, Content-Type, where the credentials were,
//!   grant type, parameter **names**) and what went upstream (names, credential placement),
//!   attached by [`NormalizeTokenRequestLayer`](crate::token_request::NormalizeTokenRequestLayer) to every
//!   answer's extensions;
//! - [`RewriteReport`](crate::token_response::RewriteReport): what came back and what the bridge did to it,
//!   attached by [`RewriteTokenResponseLayer`](crate::token_response::RewriteTokenResponseLayer);
//! - [`Outcome`]: how the exchange ended, decided by the layer that decided it (the request
//!   layer on a refusal, the response layer on the upstream's answer, the refresh records on an
//!   answer of their own), with [`AnswerKind`] for what the upstream answered: one vocabulary
//!   for the INFO line, the trace and the metrics;
//! - [`ExchangeTrace`]: all of these read from an answer's extensions, with the latency split
//!   into bridge time and upstream time, emitted as one `tracing` event at DEBUG on the target
//!   [`TRACE_TARGET`];
//! - [`AuthorizeReport`](crate::authorize::AuthorizeReport): the same for `/authorize` and `/callback` (Alexa's redirect host and
//!   vendor id, the state verdict, an upstream error relayed, the code relayed), attached by
//!   [`AuthorizeRedirect`](crate::AuthorizeRedirect).
//!
//! The layers know nothing of this module: they attach their records, and [`DiagnosticsLayer`]
//! reads them from any service's answers, as tower-http's `TraceLayer` watches a service. It
//! emits, per token exchange, one INFO line on [`EXCHANGE_TARGET`] (grant type, upstream
//! status, outcome, answered error, status, latency) and the trace when DEBUG is on for
//! [`TRACE_TARGET`]; per `/authorize` or `/callback` answer, the authorize trace; and the
//! metrics under the `metrics` feature. The server crate's `Bridge` (`account-link-bridge-server`) wraps its routes
//! in it; an axum or tonic server gets the same diagnostics by adding the one layer:
//!
//! ```
//! use account_link_bridge::diagnostics::DiagnosticsLayer;
//! use account_link_bridge::{FullBody, Provider, TokenExchangeLayer};
//! use tower::{service_fn, ServiceBuilder};
//! # let upstream = service_fn(|_: http::Request<FullBody>| async {
//! #     Ok::<_, std::convert::Infallible>(http::Response::new(FullBody::default()))
//! # });
//!
//! let token_endpoint = ServiceBuilder::new()
//!     .layer(DiagnosticsLayer::new())
//!     .layer(TokenExchangeLayer::new(Provider::salesforce()))
//!     .service(upstream);
//! # let _ = token_endpoint;
//! ```
//!
//! Secrets (codes, tokens, client secrets, PKCE verifiers) appear only as [`Fingerprint`]s:
//! 6 hex digits of an HMAC-SHA256 under a random per-process key, enough to see that the code
//! `/callback` relayed is the one later exchanged, useless to recover or confirm a secret
//! outside the process.
//!
//! With the `metrics` feature the same records move counters and a histogram through the
//! [`metrics`](https://docs.rs/metrics) facade; see the [`metrics`](self#metrics) section.
//!
//! # Metrics
//!
//! | name | kind | labels |
//! | --- | --- | --- |
//! | `account_link_bridge_exchanges_total` | counter | `grant_type`, `outcome` ([`Outcome::as_str`]) |
//! | `account_link_bridge_refusals_total` | counter | `reason` (an RFC 6749 error code) |
//! | `account_link_bridge_upstream_latency_seconds` | histogram | none |
//! | `account_link_bridge_upstream_errors_total` | counter | `class`: `timeout`, `unreachable`, `oauth_error`, `error_in_200`, `ok_false`, `html`, `http_5xx`, `unreadable`, `not_a_token` (from the [`Outcome`] and the [`AnswerKind`]) |
//! | `account_link_bridge_authorize_total` | counter | `route`, `verdict`, `state` |
//! | `account_link_bridge_refresh_records_total` | counter | `event`: `replayed`, `recorded`, `replay_refused`, `answer_pending`, `late_answer_kept` |
//! | `account_link_bridge_refresh_store_errors_total` | counter | `op`: `get`, `get_used`, `mark_used`, `claim`, `put`, `release` |
//!
//! The refresh counters are moved by the [`refresh`](crate::refresh) layer itself: a late answer
//! is recorded after its exchange was answered, with no answer to read it from.
//!
//! Every label value comes from a fixed set; none ever carries input, let alone a secret.

mod authorize;
mod exchange;
mod layer;
#[cfg(feature = "metrics")]
mod metrics;

pub use self::exchange::{ExchangeTrace, RequestTrace};
pub use self::layer::{Diagnostics, DiagnosticsLayer, ResponseFuture};
// The records the layers attach (`authorize::AuthorizeReport`, `token_request::RequestFacts`,
// `token_response::RewriteReport`) keep their one path under the layer that writes them; the
// vocabulary only the observer speaks has its path here.
pub use crate::fingerprint::Fingerprint;
pub use crate::outcome::{AnswerKind, Outcome};

/// The `tracing` target of the per-exchange records.
pub const TRACE_TARGET: &str = "account_link_bridge::trace";

/// The `tracing` target of the one INFO line per token exchange.
pub const EXCHANGE_TARGET: &str = "account_link_bridge::exchange";

/// Records one finished token exchange as [`DiagnosticsLayer`] does: the INFO line, the trace
/// event (DEBUG on [`TRACE_TARGET`]) and, with the `metrics` feature, the counters. `elapsed` is
/// the whole exchange as the caller saw it.
pub fn record_exchange<B>(response: &http::Response<B>, elapsed: std::time::Duration) {
    exchange::observe(response, elapsed);
}

/// Records one finished `/authorize` or `/callback` answer, when it carries an
/// [`AuthorizeReport`](crate::authorize::AuthorizeReport), as [`DiagnosticsLayer`] does.
pub fn record_authorize<B>(response: &http::Response<B>, elapsed: std::time::Duration) {
    if let Some(report) = response
        .extensions()
        .get::<crate::authorize::AuthorizeReport>()
    {
        authorize::emit(report, elapsed);
        #[cfg(feature = "metrics")]
        metrics::authorize(report);
    }
}

//! Diagnostics: showing an operator why linking fails, without showing a secret.
//!
//! Alexa says only "We were unable to link … at this time". The bridge knows why, and this
//! module says it in one structured record per exchange:
//!
//! - [`RequestFacts`]: what Alexa sent (body format, Content-Type, where the credentials were,
//!   grant type, parameter **names**) and what went upstream (names, credential placement),
//!   attached by [`NormalizeTokenRequestLayer`](crate::NormalizeTokenRequestLayer) to every
//!   answer's extensions;
//! - [`RewriteReport`](crate::RewriteReport): what came back and what the bridge did to it,
//!   attached by [`RewriteTokenResponseLayer`](crate::RewriteTokenResponseLayer);
//! - [`ExchangeTrace`]: both read from an answer's extensions, with the outcome and the latency
//!   split into bridge time and upstream time; the server's routes (`account-link-bridge-server`) emit it
//!   as one `tracing` event at DEBUG on the target [`TRACE_TARGET`];
//! - [`AuthorizeReport`]: the same for `/authorize` and `/callback` (Alexa's redirect host and
//!   vendor id, the state verdict, an upstream error relayed, the code relayed).
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
//! | `account_link_bridge_exchanges_total` | counter | `grant_type`, `outcome` |
//! | `account_link_bridge_refusals_total` | counter | `reason` (an RFC 6749 error code) |
//! | `account_link_bridge_upstream_latency_seconds` | histogram | none |
//! | `account_link_bridge_upstream_errors_total` | counter | `class` |
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
mod fingerprint;
#[cfg(feature = "metrics")]
mod metrics;

pub use self::authorize::{AuthorizeReport, AuthorizeRoute, AuthorizeVerdict, StateVerdict};
pub use self::exchange::{ExchangeTrace, Outcome, RequestFacts};
pub use self::fingerprint::Fingerprint;

/// The `tracing` target of the per-exchange records.
pub const TRACE_TARGET: &str = "account_link_bridge::trace";

/// Records one finished token exchange: the trace event (DEBUG on [`TRACE_TARGET`]) and, with
/// the `metrics` feature, the counters. `elapsed` is the whole exchange as the bridge saw it.
pub fn record_exchange<B>(response: &http::Response<B>, elapsed: std::time::Duration) {
    let trace = ExchangeTrace::from_response(response, elapsed);
    trace.emit();
    #[cfg(feature = "metrics")]
    metrics::exchange(&trace);
}

/// Records one finished `/authorize` or `/callback` answer, when it carries an
/// [`AuthorizeReport`].
pub fn record_authorize<B>(response: &http::Response<B>, elapsed: std::time::Duration) {
    if let Some(report) = response.extensions().get::<AuthorizeReport>() {
        report.emit(elapsed);
        #[cfg(feature = "metrics")]
        metrics::authorize(report);
    }
}

/// Whether the exchange trace is on. Parameter and field names, the upstream form and
/// fingerprints (an HMAC each) are gathered only then: they serve the trace alone, and would
/// cost every exchange allocations and hashing otherwise.
pub(crate) fn trace_enabled() -> bool {
    tracing::enabled!(target: TRACE_TARGET, tracing::Level::DEBUG)
}

//! The one vocabulary of how an exchange ended ([`Outcome`]) and of what the upstream answered
//! ([`AnswerKind`]): decided by the layers where they decide it, put in the answer's extensions,
//! and read by [`diagnostics`](crate::diagnostics) for the INFO line, the trace and the metrics
//! alike. A leaf: it imports nothing of the crate, so every layer may name it.

use serde::Serialize;

/// How one token exchange ended, from a fixed set: the `outcome` of the INFO line, of the trace
/// and of the metric labels.
///
/// The layer that decides it puts it in the answer's extensions: the request layer on a
/// refusal, the response layer on what the upstream (or the upstream client) answered, the
/// refresh records on an answer of their own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Outcome {
    /// Alexa got a token.
    Token,
    /// The bridge refused Alexa's request without calling the upstream.
    Refused,
    /// The upstream refused with its own OAuth error (`invalid_grant`, ...), relayed.
    UpstreamError,
    /// The upstream answered something that is not a token nor an OAuth error (HTML, a 5xx, an
    /// unreadable body, a 2xx without `access_token`): answered as `server_error`.
    UpstreamFault,
    /// The upstream could not be reached (refused, DNS, TLS, broken answer).
    Unreachable,
    /// The upstream did not answer in time (or, with refresh records, not within Alexa's
    /// deadline: the answer is kept for the retry).
    Timeout,
    /// Too many exchanges in flight: answered 503 at once by the upstream client's
    /// concurrency limit, without calling the upstream.
    Shed,
    /// The refresh record store could not be read: answered 503 without calling the upstream.
    StoreUnavailable,
}

impl Outcome {
    /// The outcome's name, as in the logs, the trace and the metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Token => "token",
            Outcome::Refused => "refused",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamFault => "upstream_fault",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Shed => "shed",
            Outcome::StoreUnavailable => "store_unavailable",
        }
    }
}

/// What the upstream answered, as read by the response layer: the `upstream_shape` of the trace
/// and the ground of the metrics' upstream error classes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub enum AnswerKind {
    /// A JSON object (a token or an OAuth error).
    Json,
    /// An `application/x-www-form-urlencoded` body (GitHub without `Accept`).
    Form,
    /// An HTML page (an error page, a login page, a proxy's error).
    Html,
    /// Anything else: empty, plain text, invalid JSON, ...
    Unreadable,
    /// An error signalled inside a 2xx answer (GitHub's `200` with `error`).
    ErrorIn200,
    /// Slack's `{"ok": false, ...}` inside a 2xx answer.
    OkFalse,
}

impl AnswerKind {
    /// The kind's name, as in the trace: `json`, `form`, `html`, `unreadable`,
    /// `200-with-error` or `ok:false`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerKind::Json => "json",
            AnswerKind::Form => "form",
            AnswerKind::Html => "html",
            AnswerKind::Unreadable => "unreadable",
            AnswerKind::ErrorIn200 => "200-with-error",
            AnswerKind::OkFalse => "ok:false",
        }
    }

    /// Whether the upstream signalled an error inside a 2xx answer.
    pub fn is_error_in_success(self) -> bool {
        matches!(self, AnswerKind::ErrorIn200 | AnswerKind::OkFalse)
    }
}

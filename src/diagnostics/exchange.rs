//! The per-exchange record of the token route, read from the layers' records.

use std::borrow::Cow;
use std::time::Duration;

use http::Response;
use serde::Serialize;

use super::TRACE_TARGET;
use crate::fingerprint::Fingerprint;
use crate::outcome::Outcome;
use crate::refresh::{RefreshEvent, RefreshReport};
use crate::token_request::RequestFacts;
use crate::token_response::ExpiresInAction;
use crate::{
    oauth::BodyFormat, oauth::CredentialSource, oauth::GrantType, token_response::RewriteReport,
};

/// What Alexa sent and what went upstream, without a value that could be a secret: the
/// [`RequestFacts`](crate::token_request::RequestFacts) of the request layer, spelled out for the trace (parameter names, where the
/// credentials were, [`Fingerprint`]s of the secrets).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestTrace {
    /// Alexa's `Content-Type` (the media type only, at most 64 characters), if any.
    pub content_type: Option<String>,
    /// How Alexa's body was read: `form` or `json`; `None` when it could not be parsed.
    pub body_format: Option<&'static str>,
    /// Where Alexa put the client credentials: `basic`, `body` or `none`.
    pub credentials: Option<&'static str>,
    /// The grant type Alexa asked for.
    pub grant_type: Option<Cow<'static, str>>,
    /// The names of Alexa's parameters, in order (credentials in the body included).
    pub params: Vec<String>,
    /// The names of the parameters sent upstream, in order.
    pub upstream_params: Vec<String>,
    /// Where the credentials went upstream: `basic`, `body` or `none`.
    pub upstream_credentials: Option<&'static str>,
    /// Fingerprints of the secrets sent upstream, by parameter name (`code`, `refresh_token`,
    /// `client_secret`, `code_verifier`).
    pub fingerprints: Vec<(String, Fingerprint)>,
}

impl RequestTrace {
    /// Spells out the request layer's record.
    pub fn of(facts: &RequestFacts) -> Self {
        RequestTrace {
            content_type: facts.content_type(),
            body_format: facts.body_format.map(|f| match f {
                BodyFormat::Form => "form",
                BodyFormat::Json => "json",
            }),
            credentials: facts.credentials.map(credential_name),
            grant_type: facts.grant_type.as_ref().map(grant_name),
            params: facts.alexa_params().map(str::to_owned).collect(),
            upstream_params: facts.upstream_params(),
            upstream_credentials: facts.upstream_credentials().map(credential_name),
            fingerprints: facts
                .fingerprints()
                .into_iter()
                .map(|(n, f)| (n.to_owned(), f))
                .collect(),
        }
    }

    /// The fingerprint of a parameter sent upstream.
    pub fn fingerprint(&self, name: &str) -> Option<Fingerprint> {
        self.fingerprints
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, f)| *f)
    }
}

fn credential_name(source: CredentialSource) -> &'static str {
    match source {
        CredentialSource::Basic => "basic",
        CredentialSource::Body => "body",
        CredentialSource::None => "none",
    }
}

fn grant_name(grant: &GrantType) -> Cow<'static, str> {
    match grant {
        GrantType::AuthorizationCode => Cow::Borrowed("authorization_code"),
        GrantType::RefreshToken => Cow::Borrowed("refresh_token"),
        other => Cow::Owned(bounded(other.as_str())),
    }
}

/// A name from the request, cut to 40 characters so no record grows with input.
fn bounded(name: &str) -> String {
    name.chars().take(40).collect()
}

/// The outcome the layers decided, read from an answer's extensions; an answer without one
/// (a service that is not this crate's token stack) counts as a token when it succeeded.
pub(crate) fn outcome_of<B>(response: &Response<B>) -> Outcome {
    response
        .extensions()
        .get::<Outcome>()
        .copied()
        .unwrap_or(if response.status().is_success() {
            Outcome::Token
        } else {
            Outcome::Refused
        })
}

/// One token exchange, as an operator needs to see it: see the [module docs](super).
///
/// Built from the extensions of the answer ([`RequestFacts`](crate::token_request::RequestFacts), [`RewriteReport`](crate::token_response::RewriteReport)); holds names,
/// statuses, fixed words and [`Fingerprint`]s, never a secret.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ExchangeTrace {
    /// What Alexa sent and what went upstream.
    #[serde(flatten)]
    pub request: RequestTrace,
    /// The upstream's HTTP status, when it was heard.
    pub upstream_status: Option<u16>,
    /// The upstream's `Content-Type` (media type only).
    pub upstream_content_type: Option<String>,
    /// The upstream answer's shape: `json`, `form`, `html`, `unreadable`, `200-with-error` or
    /// `ok:false`.
    pub upstream_shape: Option<&'static str>,
    /// The names of the upstream answer's top-level fields.
    pub upstream_fields: Vec<String>,
    /// The JSON type of the upstream's `expires_in`: `integer`, `float`, `string`, `null`,
    /// `other` or `absent`.
    pub expires_in_type: Option<&'static str>,
    /// What the bridge did to `expires_in`: `kept`, `converted`, `injected`, `replaced`,
    /// `clamped`, `jwt_exp`.
    pub expires_in_action: Option<&'static str>,
    /// The `expires_in` answered.
    pub expires_in: Option<u64>,
    /// Whether fields were packed into the access token.
    pub packed: bool,
    /// Whether Alexa's refresh token was echoed.
    pub refresh_token_echoed: bool,
    /// The upstream's `error` code (at most 40 characters).
    pub upstream_error: Option<String>,
    /// The `error` code answered to Alexa.
    pub answered_error: Option<String>,
    /// How the exchange ended.
    pub outcome: Outcome,
    /// The HTTP status answered to Alexa.
    pub status: u16,
    /// Time spent in the bridge itself, in milliseconds.
    pub bridge_ms: f64,
    /// Time spent waiting for the upstream, in milliseconds.
    pub upstream_ms: Option<f64>,
    /// What the refresh records did (`refresh_replayed`, `refresh_recorded`,
    /// `refresh_replay_refused`, `refresh_answer_pending`), when they are on.
    pub refresh: Option<&'static str>,
    /// Refresh record store operations that failed during the exchange.
    pub refresh_store_errors: u32,
}

impl ExchangeTrace {
    /// The trace of an answered exchange; `elapsed` is the whole exchange.
    pub fn from_response<B>(response: &Response<B>, elapsed: Duration) -> Self {
        let facts = response.extensions().get::<RequestFacts>();
        let request = facts.map(RequestTrace::of).unwrap_or_default();
        let report = response.extensions().get::<RewriteReport>();
        let status = response.status();
        let upstream = report.and_then(|r| r.upstream_latency);
        let answered_error = facts
            .and_then(|f| f.refused.as_ref())
            .or(report.and_then(|r| r.answered_error.as_ref()))
            .map(|c| c.as_str().to_owned());
        let records = response.extensions().get::<RefreshReport>();
        let heard = report.filter(|r| r.upstream_status.is_some());
        let mut request = request;
        if request.grant_type.is_none() {
            request.grant_type = report.and_then(|r| r.grant_type.as_ref()).map(grant_name);
        }
        ExchangeTrace {
            request,
            upstream_status: report.and_then(|r| r.upstream_status).map(|s| s.as_u16()),
            upstream_content_type: report.and_then(RewriteReport::upstream_content_type),
            upstream_shape: heard.and_then(|r| r.answer).map(|a| a.as_str()),
            upstream_fields: report
                .map(|r| r.answer_fields().map(str::to_owned).collect())
                .unwrap_or_default(),
            expires_in_type: heard.and_then(|r| r.expires_in_type),
            expires_in_action: report.and_then(|r| r.expires_in).map(action_name),
            expires_in: report.and_then(|r| r.expires_in_secs),
            packed: report.is_some_and(|r| r.packed),
            refresh_token_echoed: report.is_some_and(|r| r.refresh_token_echoed),
            upstream_error: report
                .and_then(|r| r.upstream_error.as_deref())
                .map(bounded),
            answered_error,
            outcome: outcome_of(response),
            status: status.as_u16(),
            bridge_ms: millis(elapsed.saturating_sub(upstream.unwrap_or_default())),
            upstream_ms: upstream.map(millis),
            refresh: records.and_then(|r| r.event).map(RefreshEvent::as_str),
            refresh_store_errors: records.map_or(0, |r| r.store_errors),
        }
    }

    /// Emits the trace as one `tracing` event at DEBUG on [`TRACE_TARGET`].
    pub fn emit(&self) {
        if !tracing::enabled!(target: TRACE_TARGET, tracing::Level::DEBUG) {
            return;
        }
        let fingerprints = self
            .request
            .fingerprints
            .iter()
            .map(|(n, f)| format!("{n}={f}"))
            .collect::<Vec<_>>()
            .join(" ");
        tracing::debug!(
            target: TRACE_TARGET,
            route = "token",
            grant_type = self.request.grant_type.as_deref(),
            alexa_content_type = self.request.content_type.as_deref(),
            alexa_body_format = self.request.body_format,
            alexa_credentials = self.request.credentials,
            alexa_params = %self.request.params.join(","),
            upstream_params = %self.request.upstream_params.join(","),
            upstream_credentials = self.request.upstream_credentials,
            fingerprints = %fingerprints,
            upstream_status = self.upstream_status,
            upstream_content_type = self.upstream_content_type.as_deref(),
            upstream_shape = self.upstream_shape,
            upstream_fields = %self.upstream_fields.join(","),
            expires_in_type = self.expires_in_type,
            expires_in_action = self.expires_in_action,
            expires_in = self.expires_in,
            packed = self.packed,
            refresh_token_echoed = self.refresh_token_echoed,
            upstream_error = self.upstream_error.as_deref(),
            answered_error = self.answered_error.as_deref(),
            outcome = self.outcome.as_str(),
            status = self.status,
            bridge_ms = self.bridge_ms,
            upstream_ms = self.upstream_ms,
            refresh = self.refresh,
            refresh_store_errors = self.refresh_store_errors,
            "exchange trace"
        );
    }
}

fn action_name(action: ExpiresInAction) -> &'static str {
    match action {
        ExpiresInAction::Kept => "kept",
        ExpiresInAction::Converted => "converted",
        ExpiresInAction::Injected => "injected",
        ExpiresInAction::Replaced => "replaced",
        ExpiresInAction::Clamped => "clamped",
        ExpiresInAction::FromJwt => "jwt_exp",
    }
}

fn millis(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1_000_000.0).round() / 1000.0
}

/// One finished exchange: the INFO line, the trace when it is on, the metrics. The costly
/// views (names, fingerprints) are worked out only for the trace.
pub(super) fn observe<B>(response: &Response<B>, elapsed: Duration) {
    let line = tracing::enabled!(target: super::EXCHANGE_TARGET, tracing::Level::INFO);
    let trace = tracing::enabled!(target: TRACE_TARGET, tracing::Level::DEBUG);
    // Nothing reads the records when neither the line, the trace nor the metrics are on.
    if !line && !trace && !cfg!(feature = "metrics") {
        return;
    }
    let extensions = response.extensions();
    let report = extensions.get::<RewriteReport>();
    let facts = extensions.get::<RequestFacts>();
    let outcome = outcome_of(response);
    let answered_error = facts
        .and_then(|f| f.refused.as_ref())
        .or(report.and_then(|r| r.answered_error.as_ref()));
    let grant_type = facts
        .and_then(|f| f.grant_type.as_ref())
        .or(report.and_then(|r| r.grant_type.as_ref()));
    if line {
        // The latency in whole microseconds: an integer field, no float formatting per line.
        let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        tracing::info!(
            target: super::EXCHANGE_TARGET,
            grant_type = grant_type.map(|g| g.as_str()),
            upstream_status = report.and_then(|r| r.upstream_status).map(|s| s.as_u16()),
            outcome = outcome.as_str(),
            error = answered_error.map(|c| c.as_str()),
            status = response.status().as_u16(),
            latency_us,
            "token exchange"
        );
    }
    if trace {
        ExchangeTrace::from_response(response, elapsed).emit();
    }
    #[cfg(feature = "metrics")]
    super::metrics::exchange(grant_type, outcome, answered_error, report);
}

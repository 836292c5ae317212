//! The per-exchange record of the token route.

use std::borrow::Cow;
use std::time::Duration;

use http::header::AUTHORIZATION;
use http::{HeaderMap, Response};
use serde::Serialize;

use super::{Fingerprint, TRACE_TARGET};
use crate::refresh::{RefreshEvent, RefreshReport};
use crate::token_response::{AnswerShape, ExpiresInAction};
use crate::{BodyFormat, CredentialSource, ErrorCode, GrantType, RewriteReport, TokenRequest};

/// What Alexa sent and what went upstream, without a value that could be a secret.
///
/// [`NormalizeTokenRequestLayer`](crate::NormalizeTokenRequestLayer) puts it in the extensions
/// of every answer it gives, refusals included. The parameter names and fingerprints are
/// gathered only while the exchange trace (target `account_link_bridge::trace`, DEBUG) is on.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RequestFacts {
    /// Alexa's `Content-Type` (the media type only, at most 64 characters), if any; recorded
    /// while the exchange trace is on.
    pub content_type: Option<String>,
    /// How Alexa's body was read: `form` or `json`; `None` when it could not be parsed.
    pub body_format: Option<&'static str>,
    /// Where Alexa put the client credentials: `basic`, `body` or `none`.
    pub credentials: Option<&'static str>,
    /// The grant type Alexa asked for (the two Alexa uses without an allocation).
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
    /// The error the bridge answered without calling the upstream (malformed request, an
    /// unsupported grant, a sealed code that does not open); the trace shows it as its
    /// `answered_error`.
    #[serde(skip)]
    pub refused: Option<ErrorCode>,
}

/// The parameters whose values are secrets and get a fingerprint.
const SECRET_PARAMS: &[&str] = &["code", "refresh_token", "client_secret", "code_verifier"];

impl RequestFacts {
    /// The facts known before parsing: Alexa's Content-Type.
    pub(crate) fn of_headers(headers: &HeaderMap) -> Self {
        // Trace-only, like the names and fingerprints gathered later.
        let content_type = super::trace_enabled()
            .then(|| crate::content_media_type(headers).map(|v| v.chars().take(64).collect()))
            .flatten();
        RequestFacts {
            content_type,
            ..RequestFacts::default()
        }
    }

    /// Adds what the parsed request says (before any hook rewrote it).
    pub(crate) fn alexa_sent(&mut self, request: &TokenRequest) {
        self.body_format = Some(match request.body_format() {
            BodyFormat::Form => "form",
            BodyFormat::Json => "json",
        });
        self.credentials = Some(credential_name(request.credential_source()));
        self.grant_type = Some(match request.grant_type() {
            GrantType::AuthorizationCode => Cow::Borrowed("authorization_code"),
            GrantType::RefreshToken => Cow::Borrowed("refresh_token"),
            other => Cow::Owned(bounded(other.as_str())),
        });
        if !super::trace_enabled() {
            return;
        }
        self.params = request.params().map(|(n, _)| bounded(n)).collect();
        if request.credential_source() == CredentialSource::Body {
            self.params.extend(
                ["client_id", "client_secret"]
                    .iter()
                    .filter(|n| match **n {
                        "client_id" => request.client_id().is_some(),
                        _ => request.client_secret().is_some(),
                    })
                    .map(|n| n.to_string()),
            );
        }
    }

    /// Adds what went upstream: the encoded form and the `Authorization` header.
    pub(crate) fn upstream_sent(
        &mut self,
        request: &TokenRequest,
        form: &[u8],
        headers: &HeaderMap,
    ) {
        if !super::trace_enabled() {
            return;
        }
        self.upstream_params = form_urlencoded::parse(form)
            .map(|(n, _)| bounded(&n))
            .collect();
        let in_body = self
            .upstream_params
            .iter()
            .any(|n| n == "client_secret" || n == "client_id");
        self.upstream_credentials = Some(if headers.contains_key(AUTHORIZATION) {
            "basic"
        } else if in_body {
            "body"
        } else {
            "none"
        });
        self.fingerprints = SECRET_PARAMS
            .iter()
            .filter_map(|name| {
                let value = match *name {
                    "client_secret" => request.client_secret(),
                    name => request.param(name),
                };
                value.map(|v| (name.to_string(), Fingerprint::of(v)))
            })
            .collect();
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

/// A name from the request, cut to 40 characters so no record grows with input.
fn bounded(name: &str) -> String {
    name.chars().take(40).collect()
}

/// How one token exchange ended, from a fixed set (also the `outcome` metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
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
    /// The upstream did not answer in time.
    Timeout,
    /// Too many exchanges in flight: answered 503 at once by the upstream client's
    /// concurrency limit, without calling the upstream.
    Shed,
}

impl Outcome {
    /// The outcome's name, as in the records and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Token => "token",
            Outcome::Refused => "refused",
            Outcome::UpstreamError => "upstream_error",
            Outcome::UpstreamFault => "upstream_fault",
            Outcome::Unreachable => "unreachable",
            Outcome::Timeout => "timeout",
            Outcome::Shed => "shed",
        }
    }
}

/// One token exchange, as an operator needs to see it: see the [module docs](super).
///
/// Built from the extensions of the answer ([`RequestFacts`], [`RewriteReport`]); holds names,
/// statuses, fixed words and [`Fingerprint`]s, never a secret.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ExchangeTrace {
    /// What Alexa sent and what went upstream.
    #[serde(flatten)]
    pub request: RequestFacts,
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
        let request = response
            .extensions()
            .get::<RequestFacts>()
            .cloned()
            .unwrap_or_default();
        let report = response.extensions().get::<RewriteReport>();
        let status = response.status();
        let upstream = report.and_then(|r| r.upstream_latency);
        let answered_error = request
            .refused
            .as_ref()
            .or(report.and_then(|r| r.answered_error.as_ref()))
            .map(|c| c.as_str().to_owned());
        let records = response.extensions().get::<RefreshReport>();
        let replay_refused = records.and_then(|r| r.event) == Some(RefreshEvent::ReplayRefused);
        let outcome = match (report, &request.refused) {
            (_, Some(_)) => Outcome::Refused,
            _ if replay_refused => Outcome::Refused,
            (None, None) if status.is_success() => Outcome::Token,
            (None, None) => Outcome::Refused,
            (Some(r), None) => match (&r.answered_error, r.upstream_status) {
                (None, _) => Outcome::Token,
                (Some(_), None) if status == http::StatusCode::GATEWAY_TIMEOUT => Outcome::Timeout,
                // The upstream client answers 503 of itself only when it sheds a call.
                (Some(_), None) if status == http::StatusCode::SERVICE_UNAVAILABLE => Outcome::Shed,
                (Some(_), None) => Outcome::Unreachable,
                (Some(_), Some(_)) if r.upstream_error.is_some() && !is_fault(status) => {
                    Outcome::UpstreamError
                }
                (Some(_), Some(_)) => Outcome::UpstreamFault,
            },
        };
        let heard = report.filter(|r| r.upstream_status.is_some());
        ExchangeTrace {
            request,
            upstream_status: report.and_then(|r| r.upstream_status).map(|s| s.as_u16()),
            upstream_content_type: report.and_then(|r| r.upstream_content_type.clone()),
            upstream_shape: heard.map(shape_name),
            upstream_fields: report.map(|r| r.answer_fields.clone()).unwrap_or_default(),
            expires_in_type: heard.and_then(|r| r.expires_in_type),
            expires_in_action: report.and_then(|r| r.expires_in).map(action_name),
            expires_in: report.and_then(|r| r.expires_in_secs),
            packed: report.is_some_and(|r| r.packed),
            refresh_token_echoed: report.is_some_and(|r| r.refresh_token_echoed),
            upstream_error: report
                .and_then(|r| r.upstream_error.as_deref())
                .map(bounded),
            answered_error,
            outcome,
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

/// A status the response layer uses only for faults on the path.
fn is_fault(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 502..=504)
}

fn shape_name(report: &RewriteReport) -> &'static str {
    if report.error_in_success {
        return if report.answer_fields.iter().any(|f| f == "ok") {
            "ok:false"
        } else {
            "200-with-error"
        };
    }
    match report.shape {
        AnswerShape::Json => "json",
        AnswerShape::Form => "form",
        AnswerShape::Html => "html",
        AnswerShape::Unreadable => "unreadable",
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

/// The grant type as a metric label: one of a fixed set.
#[cfg(feature = "metrics")]
pub(crate) fn grant_label(grant_type: Option<&str>) -> &'static str {
    match grant_type {
        Some("authorization_code") => "authorization_code",
        Some("refresh_token") => "refresh_token",
        Some(_) => "other",
        None => "none",
    }
}

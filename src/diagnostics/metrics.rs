//! The metrics the records move (feature `metrics`); every label value is from a fixed set.

use ::metrics::{counter, histogram};

use crate::authorize::{AuthorizeReport, AuthorizeRoute};
use crate::outcome::{AnswerKind, Outcome};
use crate::{oauth::GrantType, token_response::RewriteReport, ErrorCode};

pub(super) fn exchange(
    grant_type: Option<&GrantType>,
    outcome: Outcome,
    answered_error: Option<&ErrorCode>,
    report: Option<&RewriteReport>,
) {
    counter!(
        "account_link_bridge_exchanges_total",
        "grant_type" => grant_label(grant_type),
        "outcome" => outcome.as_str(),
    )
    .increment(1);
    if outcome == Outcome::Refused {
        counter!(
            "account_link_bridge_refusals_total",
            "reason" => error_label(answered_error.map(ErrorCode::as_str)),
        )
        .increment(1);
    }
    if let Some(latency) = report.and_then(|r| r.upstream_latency) {
        histogram!("account_link_bridge_upstream_latency_seconds").record(latency.as_secs_f64());
    }
    let answer = report.and_then(|r| r.answer);
    let status = report.and_then(|r| r.upstream_status).map(|s| s.as_u16());
    let class = match outcome {
        Outcome::Timeout => Some("timeout"),
        Outcome::Unreachable => Some("unreachable"),
        Outcome::UpstreamError => Some(match answer {
            Some(AnswerKind::OkFalse) => "ok_false",
            Some(AnswerKind::ErrorIn200) => "error_in_200",
            _ => "oauth_error",
        }),
        Outcome::UpstreamFault => Some(match (answer, status) {
            (Some(AnswerKind::Html), _) => "html",
            (_, Some(500..=599)) => "http_5xx",
            (Some(AnswerKind::Unreadable), _) => "unreadable",
            _ => "not_a_token",
        }),
        _ => None,
    };
    if let Some(class) = class {
        counter!("account_link_bridge_upstream_errors_total", "class" => class).increment(1);
    }
}

/// The grant type as a metric label: one of a fixed set.
fn grant_label(grant_type: Option<&GrantType>) -> &'static str {
    match grant_type {
        Some(GrantType::AuthorizationCode) => "authorization_code",
        Some(GrantType::RefreshToken) => "refresh_token",
        Some(_) => "other",
        None => "none",
    }
}

pub(super) fn authorize(report: &AuthorizeReport) {
    counter!(
        "account_link_bridge_authorize_total",
        "route" => match report.route {
            AuthorizeRoute::Authorize => "authorize",
            AuthorizeRoute::Callback => "callback",
        },
        "verdict" => report.verdict.as_str(),
        "state" => report.state.map_or("none", |s| s.as_str()),
    )
    .increment(1);
}

/// An answered error code as a label: one of RFC 6749's codes, or `other`.
fn error_label(code: Option<&str>) -> &'static str {
    const KNOWN: &[&str] = &[
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
    ];
    match code {
        None => "none",
        Some(code) => KNOWN
            .iter()
            .find(|k| **k == code)
            .copied()
            .unwrap_or("other"),
    }
}

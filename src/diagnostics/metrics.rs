//! The metrics the records move (feature `metrics`); every label value is from a fixed set.

use ::metrics::{counter, histogram};

use super::exchange::grant_label;
use super::{AuthorizeReport, AuthorizeRoute, ExchangeTrace, Outcome};

pub(super) fn exchange(trace: &ExchangeTrace) {
    counter!(
        "account_link_bridge_exchanges_total",
        "grant_type" => grant_label(trace.request.grant_type.as_deref()),
        "outcome" => trace.outcome.as_str(),
    )
    .increment(1);
    if trace.outcome == Outcome::Refused {
        counter!(
            "account_link_bridge_refusals_total",
            "reason" => error_label(trace.answered_error.as_deref()),
        )
        .increment(1);
    }
    if let Some(ms) = trace.upstream_ms {
        histogram!("account_link_bridge_upstream_latency_seconds").record(ms / 1000.0);
    }
    let class = match trace.outcome {
        Outcome::Timeout => Some("timeout"),
        Outcome::Unreachable => Some("unreachable"),
        Outcome::UpstreamError => Some(match trace.upstream_shape {
            Some("ok:false") => "ok_false",
            Some("200-with-error") => "error_in_200",
            _ => "oauth_error",
        }),
        Outcome::UpstreamFault => Some(match (trace.upstream_shape, trace.upstream_status) {
            (Some("html"), _) => "html",
            (_, Some(500..=599)) => "http_5xx",
            (Some("unreadable"), _) => "unreadable",
            _ => "not_a_token",
        }),
        _ => None,
    };
    if let Some(class) = class {
        counter!("account_link_bridge_upstream_errors_total", "class" => class).increment(1);
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

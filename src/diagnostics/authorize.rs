//! The trace of `/authorize` and `/callback` answers.

use std::time::Duration;

use super::TRACE_TARGET;
use crate::authorize::{AuthorizeReport, StateVerdict};

/// Emits the report as one `tracing` event at DEBUG on [`TRACE_TARGET`].
pub(super) fn emit(report: &AuthorizeReport, elapsed: Duration) {
    tracing::debug!(
        target: TRACE_TARGET,
        route = report.route.as_str(),
        verdict = report.verdict.as_str(),
        reason = report.reason,
        state = report.state.map(StateVerdict::as_str),
        redirect_host = report.redirect_host.as_deref(),
        vendor_id = report.vendor_id.as_deref(),
        upstream_error = report.upstream_error.as_deref(),
        code = report.code.map(|c| c.to_string()).as_deref(),
        accepted_redirects = report.accepted_redirects.as_deref(),
        bridge_ms = elapsed.as_secs_f64() * 1000.0,
        "authorize trace"
    );
}

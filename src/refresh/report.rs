//! What the records did for one exchange, in the answer's extensions; and the counters.

use super::store::StoreError;

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

pub(super) fn store_fault(op: &'static str, error: &StoreError) {
    tracing::warn!(
        target: "account_link_bridge::refresh",
        op,
        error = %error,
        "refresh record store failed: exchanging without a record"
    );
    #[cfg(feature = "metrics")]
    metrics::counter!("account_link_bridge_refresh_store_errors_total", "op" => op).increment(1);
}

pub(super) fn count(event: RefreshEvent) {
    #[cfg(feature = "metrics")]
    metrics::counter!("account_link_bridge_refresh_records_total", "event" => event.label())
        .increment(1);
    #[cfg(not(feature = "metrics"))]
    let _ = event.label();
}

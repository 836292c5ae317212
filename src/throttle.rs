//! [`LogThrottle`]: a log line written at most once a second, however often it is due.
//!
//! A shed request or connection is counted by the metrics every time; the WARN line saying so
//! must not become a log flood of its own under the very load that causes it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Says when a repeated log line is due: at most once a second, with how many times it was due
/// since the last one written. Shared by reference across tasks (atomics, no lock).
///
/// ```
/// use account_link_bridge::throttle::LogThrottle;
///
/// let shed_log = LogThrottle::new();
/// if let Some(unwritten) = shed_log.due() {
///     tracing::warn!(shed_since_last_line = unwritten, "shed a request");
/// }
/// assert_eq!(shed_log.due(), None); // again within the second: counted, not written
/// ```
#[derive(Debug)]
pub struct LogThrottle {
    epoch: Instant,
    /// Milliseconds after `epoch` of the last line written, plus one (0: never written).
    last: AtomicU64,
    suppressed: AtomicU64,
}

impl LogThrottle {
    const INTERVAL_MS: u64 = 1000;

    /// A throttle whose first line is due at once.
    pub fn new() -> Self {
        LogThrottle {
            epoch: Instant::now(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether to write the line now (`Some`, with how many were left unwritten before it), or
    /// not (`None`, counted).
    pub fn due(&self) -> Option<u64> {
        self.due_at(self.epoch.elapsed().as_millis() as u64 + 1)
    }

    /// [`LogThrottle::due`] at `now`, in milliseconds after `epoch` plus one.
    fn due_at(&self, now: u64) -> Option<u64> {
        let last = self.last.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= Self::INTERVAL_MS;
        if due
            && self
                .last
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            Some(self.suppressed.swap(0, Ordering::Relaxed))
        } else {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            None
        }
    }
}

impl Default for LogThrottle {
    fn default() -> Self {
        LogThrottle::new()
    }
}

#[cfg(test)]
mod tests {
    use super::LogThrottle;

    #[test]
    fn a_throttled_line_is_due_once_a_second_and_counts_the_rest() {
        let throttle = LogThrottle::new();
        assert_eq!(throttle.due_at(1), Some(0));
        assert_eq!(throttle.due_at(2), None);
        assert_eq!(throttle.due_at(999), None);
        assert_eq!(throttle.due_at(1001), Some(2));
        assert_eq!(throttle.due_at(1500), None);
        assert_eq!(throttle.due_at(2001), Some(1));
    }
}

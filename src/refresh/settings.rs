//! The records' settings: the store, the index key, the windows and the store keys.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::record::TokenId;
use super::report::{store_fault, RefreshReport};
use super::store::{RecordStore, StoreFuture};

/// How the bridge keeps refresh records: the store, the keys and the windows. Cheap to clone.
/// See the [module docs](super).
#[derive(Clone)]
pub struct RefreshRecords {
    pub(super) settings: Arc<Settings>,
}

pub(super) struct Settings {
    pub(super) store: Arc<dyn RecordStore>,
    pub(super) index_key: [u8; 32],
    pub(super) grace: Duration,
    pub(super) answer_deadline: Duration,
    pub(super) completion_timeout: Duration,
    pub(super) poll: Duration,
}

impl RefreshRecords {
    /// The default grace window: 300 s (the [module docs](super#the-grace-window-and-its-security-trade-off) say why).
    pub const DEFAULT_GRACE: Duration = Duration::from_secs(300);
    /// The default deadline of Alexa's answer: 4 s, inside Alexa's 4.5 s.
    pub const DEFAULT_ANSWER_DEADLINE: Duration = Duration::from_secs(4);
    /// The default bound on one upstream call run to completion: 30 s.
    pub const DEFAULT_COMPLETION_TIMEOUT: Duration = Duration::from_secs(30);

    /// Records in `store`, under a random per-process index key (give replicas the same key
    /// with [`RefreshRecords::index_key`]).
    pub fn new(store: impl RecordStore) -> Self {
        Self::with_shared_store(Arc::new(store))
    }

    /// Records in a store shared with other parts of the bridge.
    pub fn with_shared_store(store: Arc<dyn RecordStore>) -> Self {
        let mut index_key = [0u8; 32];
        getrandom::getrandom(&mut index_key).expect("the operating system's random source works");
        RefreshRecords {
            settings: Arc::new(Settings {
                store,
                index_key,
                grace: Self::DEFAULT_GRACE,
                answer_deadline: Self::DEFAULT_ANSWER_DEADLINE,
                completion_timeout: Self::DEFAULT_COMPLETION_TIMEOUT,
                poll: Duration::from_millis(25),
            }),
        }
    }

    fn edit(mut self, edit: impl FnOnce(&mut Settings)) -> Self {
        match Arc::get_mut(&mut self.settings) {
            Some(settings) => edit(settings),
            None => {
                let s = &*self.settings;
                let mut copy = Settings {
                    store: s.store.clone(),
                    index_key: s.index_key,
                    grace: s.grace,
                    answer_deadline: s.answer_deadline,
                    completion_timeout: s.completion_timeout,
                    poll: s.poll,
                };
                edit(&mut copy);
                self.settings = Arc::new(copy);
            }
        }
        self
    }

    /// Derives the index key (which names records in the store) from `secret`: give every
    /// replica sharing a store the same secret, e.g. the state key (`--state-key`). The key is
    /// HMAC-SHA256(`secret`, a fixed label), so the secret itself is not used for another
    /// purpose.
    pub fn index_key(self, secret: &[u8]) -> Self {
        let mut mac =
            <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
        mac.update(b"account-link-bridge/refresh-record/index/v1");
        let key: [u8; 32] = mac.finalize().into_bytes().into();
        self.edit(|s| s.index_key = key)
    }

    /// How long a record answers repeats ([`RefreshRecords::DEFAULT_GRACE`]).
    pub fn grace(self, grace: Duration) -> Self {
        self.edit(|s| s.grace = grace.max(Duration::from_millis(1)))
    }

    /// How long Alexa's request waits for its answer before a 504 `temporarily_unavailable`
    /// ([`RefreshRecords::DEFAULT_ANSWER_DEADLINE`]; keep it below Alexa's 4.5 s).
    pub fn answer_deadline(self, deadline: Duration) -> Self {
        self.edit(|s| s.answer_deadline = deadline)
    }

    /// How long one upstream call may run to completion after Alexa's deadline
    /// ([`RefreshRecords::DEFAULT_COMPLETION_TIMEOUT`]). An [`Upstream`](crate::upstream::Upstream)
    /// client's own timeout should be at least this, or it cuts the call first.
    pub fn completion_timeout(self, timeout: Duration) -> Self {
        self.edit(|s| s.completion_timeout = timeout)
    }

    /// The store, to share it (e.g. for single-use checks with
    /// [`RecordStore::set_if_absent`]).
    pub fn store(&self) -> &Arc<dyn RecordStore> {
        &self.settings.store
    }

    /// One line for the startup log: the store (without a password) and the windows.
    pub fn describe(&self) -> String {
        let s = &*self.settings;
        format!(
            "refresh records in {}, grace {} s, answer deadline {} ms, completion timeout {} s",
            s.store.describe(),
            s.grace.as_secs_f64(),
            s.answer_deadline.as_millis(),
            s.completion_timeout.as_secs_f64()
        )
    }
}

impl fmt::Debug for RefreshRecords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &*self.settings;
        f.debug_struct("RefreshRecords")
            .field("store", &s.store)
            .field("grace", &s.grace)
            .field("answer_deadline", &s.answer_deadline)
            .field("completion_timeout", &s.completion_timeout)
            .finish_non_exhaustive()
    }
}

/// The store keys of one token: its record, its claim, and the marker that it was used.
pub(super) struct Keys {
    pub(super) record: String,
    pub(super) claim: String,
}

impl Keys {
    pub(super) fn of(id: TokenId) -> Self {
        let id = id.to_key();
        Keys {
            record: format!("alb:refresh:rec:{id}"),
            claim: format!("alb:refresh:claim:{id}"),
        }
    }
}

pub(super) fn used_key(id: TokenId) -> String {
    format!("alb:refresh:used:{}", id.to_key())
}

impl Settings {
    /// One store operation; a fault is logged, counted, and returned as `Err(())`.
    pub(super) async fn op<T>(
        &self,
        op: &'static str,
        future: StoreFuture<'_, T>,
        report: &mut RefreshReport,
    ) -> Result<T, ()> {
        future.await.map_err(|error| {
            report.store_errors += 1;
            store_fault(op, &error);
        })
    }

    pub(super) fn claim_ttl(&self) -> Duration {
        self.completion_timeout + Duration::from_secs(5)
    }
}

//! The per-answer record of `/authorize` and `/callback`, read by
//! [`diagnostics`](crate::diagnostics).

use std::time::Duration;

use serde::Serialize;
use url::Url;

use crate::fingerprint::Fingerprint;
use crate::state::OpenError;

/// Which route of the authorization middleman answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthorizeRoute {
    /// `GET /authorize`, from Alexa's app.
    Authorize,
    /// `GET /callback`, from the upstream's login.
    Callback,
}

/// What the middleman did, from a fixed set (also a metric label).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AuthorizeVerdict {
    /// The browser was sent to the upstream's login.
    SentUpstream,
    /// A sealed code went back to Alexa.
    CodeToAlexa,
    /// The token went back to Alexa in the fragment (implicit grant).
    TokenToAlexa,
    /// An OAuth error went back to Alexa's redirect URL (the upstream's, or the bridge's).
    ErrorToAlexa,
    /// A 400 page without redirect: the request could not be trusted to say where to go.
    Refused,
}

impl AuthorizeRoute {
    /// The route's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeRoute::Authorize => "authorize",
            AuthorizeRoute::Callback => "callback",
        }
    }
}

impl AuthorizeVerdict {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            AuthorizeVerdict::SentUpstream => "sent_upstream",
            AuthorizeVerdict::CodeToAlexa => "code_to_alexa",
            AuthorizeVerdict::TokenToAlexa => "token_to_alexa",
            AuthorizeVerdict::ErrorToAlexa => "error_to_alexa",
            AuthorizeVerdict::Refused => "refused",
        }
    }
}

/// What `/callback` found in the `state` it got back.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StateVerdict {
    /// Opened: sealed by this bridge (or a replica sharing its keys), in time.
    Ok,
    /// No state, or a repeated one.
    Missing,
    /// Not something a bridge sealed (bad encoding, unknown version).
    Malformed,
    /// The authentication failed: altered, or sealed under a key this bridge does not hold
    /// (the AEAD cannot tell these apart; after a key change, suspect the keys).
    TamperedOrWrongKey,
    /// Authentic but past its expiry: the user took too long at the upstream's login.
    Expired,
    /// Longer than any state this bridge seals.
    TooLarge,
    /// Genuine, but already used once: a state is accepted once.
    Replayed,
    /// Opened and accepted, but its single use could not be checked (the nonce cache was full
    /// or its shared store failed): a fault of the cache never blocks a link.
    OkUnchecked,
}

impl StateVerdict {
    /// The verdict's name.
    pub fn as_str(self) -> &'static str {
        match self {
            StateVerdict::Ok => "ok",
            StateVerdict::Missing => "missing",
            StateVerdict::Malformed => "malformed",
            StateVerdict::TamperedOrWrongKey => "tampered_or_wrong_key",
            StateVerdict::Expired => "expired",
            StateVerdict::TooLarge => "too_large",
            StateVerdict::Replayed => "replayed",
            StateVerdict::OkUnchecked => "ok_unchecked",
        }
    }
}

impl From<&OpenError> for StateVerdict {
    fn from(error: &OpenError) -> Self {
        match error {
            OpenError::Malformed => StateVerdict::Malformed,
            OpenError::Tampered => StateVerdict::TamperedOrWrongKey,
            OpenError::Expired => StateVerdict::Expired,
            OpenError::TooLarge => StateVerdict::TooLarge,
        }
    }
}

/// One answer of `/authorize` or `/callback`, as an operator needs to see it; attached to the
/// answer's extensions by [`AuthorizeRedirect`](crate::AuthorizeRedirect).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AuthorizeReport {
    /// The route.
    pub route: AuthorizeRoute,
    /// What the middleman did.
    pub verdict: AuthorizeVerdict,
    /// Why, in fixed words (never input).
    pub reason: &'static str,
    /// `/callback` only: what the state said.
    pub state: Option<StateVerdict>,
    /// The host of Alexa's redirect URL (`pitangui.amazon.com`, `layla.amazon.com`, ...), once
    /// it was checked.
    pub redirect_host: Option<String>,
    /// The skill's vendor id, the last segment of Alexa's redirect URL.
    pub vendor_id: Option<String>,
    /// The `error` the upstream sent to `/callback`, relayed to Alexa (at most 40 characters).
    pub upstream_error: Option<String>,
    /// The fingerprint of the upstream's code relayed by `/callback`: the token route's trace
    /// shows the same fingerprint for `code` when Alexa redeems it.
    pub code: Option<Fingerprint>,
    /// When Alexa's redirect URL was refused: the redirect URLs this bridge accepts, as
    /// patterns (e.g. `https://{pitangui.amazon.com|...}/api/skill/link/{M2AAAAAAAAAAAA}`),
    /// so the operator sees at once whether a vendor pin or a host is missing.
    pub accepted_redirects: Option<String>,
}

impl AuthorizeReport {
    pub(crate) fn new(route: AuthorizeRoute) -> Self {
        AuthorizeReport {
            route,
            verdict: AuthorizeVerdict::Refused,
            reason: "",
            state: None,
            redirect_host: None,
            vendor_id: None,
            upstream_error: None,
            code: None,
            accepted_redirects: None,
        }
    }

    /// Notes Alexa's (checked) redirect URL.
    pub(crate) fn redirect(&mut self, url: &Url) {
        self.redirect_host = url.host_str().map(str::to_owned);
        // The link path ends in the vendor id; the implicit grant's page names it in the query.
        let from_query = url
            .query_pairs()
            .find(|(name, _)| name == "vendorId")
            .map(|(_, id)| id.into_owned());
        self.vendor_id = from_query
            .or_else(|| {
                url.path_segments()
                    .and_then(|mut s| s.next_back())
                    .map(str::to_owned)
            })
            .filter(|s| !s.is_empty())
            .map(|s| s.chars().take(40).collect());
    }

    pub(crate) fn verdict(&mut self, verdict: AuthorizeVerdict, reason: &'static str) {
        self.verdict = verdict;
        self.reason = reason;
    }
}

/// The default name of the state key in the refusal lines, when the application names none
/// ([`AuthorizeRedirectBuilder::state_key_setting`](super::AuthorizeRedirectBuilder::state_key_setting)).
pub(crate) const DEFAULT_STATE_KEY_SETTING: &str = "the state key";

/// What a refused state at `/callback` most likely means, in words an operator can act on;
/// `None` for a state that was not refused. `setting` names how the state key is set, and
/// `lifetime` is how long a state lives.
pub(crate) fn state_refusal_cause(
    verdict: StateVerdict,
    setting: &str,
    lifetime: Duration,
) -> Option<String> {
    Some(match verdict {
        StateVerdict::Ok | StateVerdict::OkUnchecked => return None,
        StateVerdict::TamperedOrWrongKey => format!(
            "sealed with another key: replicas must share {setting}, or the bridge restarted without {setting} (a random key per process); otherwise the state was altered"
        ),
        StateVerdict::Expired => format!(
            "expired: the user took longer than {} s at the upstream's login, or the flow was restarted from an old page",
            lifetime.as_secs()
        ),
        StateVerdict::Replayed => "already used: the browser reloaded /callback or went back to it, or the upstream redirected twice; the link must start again from the Alexa app".into(),
        StateVerdict::Missing => "no single state came back: the upstream dropped it, or /callback was opened by hand".into(),
        StateVerdict::Malformed => "not a state any bridge sealed: /callback was opened by hand, or something between the upstream and the bridge changed the state".into(),
        StateVerdict::TooLarge => "longer than any state a bridge seals: not from this bridge".into(),
    })
}

/// What a refused sealed code at the token endpoint most likely means, for its INFO line.
pub(crate) fn code_refusal_cause(error: OpenError, setting: &str, lifetime: Duration) -> String {
    match error {
        OpenError::Malformed | OpenError::Tampered => format!(
            "sealed with another key: replicas must share {setting}, or the bridge restarted without {setting} (a random key per process); otherwise the code was altered or not issued by this deployment"
        ),
        OpenError::Expired => format!(
            "expired: Alexa redeemed it more than {} s after /callback handed it out, or retried an old link",
            lifetime.as_secs()
        ),
        OpenError::TooLarge => "longer than any code the bridge hands out: not from this bridge".into(),
    }
}

/// What a refusal line is about: the state at `/callback`.
pub(crate) const REFUSED_STATE: &str = "state at /callback";

/// What a refusal line is about: a sealed code at the token endpoint.
pub(crate) const REFUSED_CODE: &str = "sealed code at /token";

/// The one INFO line of a refused state or sealed code: what was refused, the verdict and its
/// likely cause, in fixed words only (never the state, the code or anything else the request
/// carried).
pub(crate) fn log_refusal(refused: &'static str, verdict: &str, cause: &str) {
    // The verdict as a field (for JSON logs and queries); the cause in the message, once.
    tracing::info!(
        target: "account_link_bridge::authorize",
        verdict,
        "{refused} refused: {cause}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_refused_state_names_its_likely_cause() {
        let ten_minutes = Duration::from_secs(600);
        let cause = |verdict| state_refusal_cause(verdict, "BRIDGE_KEY", ten_minutes);
        let wrong_key = cause(StateVerdict::TamperedOrWrongKey).unwrap();
        assert!(
            wrong_key.starts_with(
                "sealed with another key: replicas must share BRIDGE_KEY, or the bridge restarted without BRIDGE_KEY"
            ),
            "{wrong_key}"
        );
        let expired = cause(StateVerdict::Expired).unwrap();
        assert!(
            expired.starts_with("expired: the user took longer than 600 s"),
            "{expired}"
        );
        assert!(expired.contains("the flow was restarted"), "{expired}");
        assert!(cause(StateVerdict::Replayed)
            .unwrap()
            .starts_with("already used"));
        for refused in [
            StateVerdict::Missing,
            StateVerdict::Malformed,
            StateVerdict::TooLarge,
        ] {
            assert!(cause(refused).is_some_and(|c| !c.is_empty()));
        }
        // Accepted states have no cause to give.
        assert_eq!(cause(StateVerdict::Ok), None);
        assert_eq!(cause(StateVerdict::OkUnchecked), None);
    }

    #[test]
    fn each_refused_sealed_code_names_its_likely_cause() {
        let five_minutes = Duration::from_secs(300);
        let cause = |error| code_refusal_cause(error, DEFAULT_STATE_KEY_SETTING, five_minutes);
        assert!(cause(OpenError::Tampered)
            .starts_with("sealed with another key: replicas must share the state key"));
        assert_eq!(cause(OpenError::Malformed), cause(OpenError::Tampered));
        assert!(cause(OpenError::Expired).starts_with("expired: Alexa redeemed it more than 300 s"));
        assert!(cause(OpenError::TooLarge).contains("longer than any code"));
    }
}

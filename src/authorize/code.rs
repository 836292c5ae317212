//! The sealed code Alexa receives from `/callback`, and its opener at the token endpoint.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::StatusCode;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::report::{code_refusal_cause, log_refusal, DEFAULT_STATE_KEY_SETTING, REFUSED_CODE};
use super::AuthorizeRedirectBuilder;
use crate::oauth::{GrantType, TokenRequest};
use crate::state::{OpenError, SealedPayload, StateSealer};
use crate::{provider::TokenRequestHook, ErrorCode, OAuthError};

/// What the bridge remembers between `/authorize` and `/callback`, sealed into the upstream
/// `state`.
#[derive(Serialize, Deserialize)]
pub(crate) struct AuthorizeState {
    /// Alexa's `state`, given back unchanged.
    #[serde(rename = "s")]
    pub(crate) alexa_state: String,
    /// Alexa's checked `redirect_uri`, exactly as Alexa sent it (its token request must repeat
    /// it character for character, RFC 6749 §4.1.3).
    #[serde(rename = "r")]
    pub(crate) alexa_redirect: String,
    /// A random id (base64url of 16 bytes): the state is accepted once by this id, and the
    /// bridge's PKCE verifier is derived from it.
    #[serde(rename = "n")]
    pub(crate) id: String,
    /// Present when the bridge made its own PKCE pair toward the upstream: the hint of the key
    /// its verifier is derived under ([`bridge_verifier`]). The verifier itself is never sealed.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub(crate) pkce_key: Option<u32>,
    /// Alexa's own S256 `code_challenge`, checked by the bridge at `/token`.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub(crate) alexa_challenge: Option<String>,
}

impl SealedPayload for AuthorizeState {
    const PURPOSE: &'static str = "account-link-bridge/authorize-state/v2";
}

/// What the token endpoint needs to redeem the upstream's code, sealed into the code Alexa
/// receives. Its purpose differs from [`AuthorizeState`]'s, so a state never opens as a code.
#[derive(Serialize, Deserialize)]
pub(crate) struct SealedCode {
    /// The upstream's authorization code.
    #[serde(rename = "c")]
    pub(crate) upstream_code: String,
    /// The `redirect_uri` the upstream bound the code to: the bridge's callback.
    #[serde(rename = "r")]
    pub(crate) callback_url: String,
    /// Alexa's `redirect_uri` as it sent it, which its token request must repeat exactly
    /// (RFC 6749 §4.1.3).
    #[serde(rename = "a")]
    pub(crate) alexa_redirect: String,
    /// The state's id, from which the bridge's PKCE verifier is derived.
    #[serde(rename = "n")]
    pub(crate) id: String,
    /// The key hint of the bridge's PKCE verifier, when it made one.
    #[serde(rename = "k", default, skip_serializing_if = "Option::is_none")]
    pub(crate) pkce_key: Option<u32>,
    /// Alexa's S256 `code_challenge`, when it sent one.
    #[serde(rename = "x", default, skip_serializing_if = "Option::is_none")]
    pub(crate) alexa_challenge: Option<String>,
}

impl SealedPayload for SealedCode {
    const PURPOSE: &'static str = "account-link-bridge/sealed-code/v2";
}

/// The label of the bridge's PKCE verifier derivation.
const VERIFIER_LABEL: &str = "account-link-bridge/pkce-verifier/v1";

/// The bridge's own PKCE verifier for the state `id` (RFC 7636 §4.1: 43 characters of
/// base64url), derived with HMAC from the sealing key, so it never travels in the state or
/// the code. Returns the key hint to seal beside the id.
pub(crate) fn bridge_verifier(sealer: &StateSealer, id: &str) -> (u32, String) {
    let (hint, secret) = sealer.derive_secret(VERIFIER_LABEL, id.as_bytes());
    (hint, URL_SAFE_NO_PAD.encode(secret))
}

/// The verifier [`bridge_verifier`] made, if this sealer still holds the key.
pub(crate) fn rederive_verifier(sealer: &StateSealer, hint: u32, id: &str) -> Option<String> {
    sealer
        .rederive_secret(hint, VERIFIER_LABEL, id.as_bytes())
        .map(|secret| URL_SAFE_NO_PAD.encode(secret))
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
pub(crate) fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether two strings are equal, in time independent of where they differ.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The token-endpoint half of the middleman: a [`TokenRequestHook`] that opens the sealed code
/// `/callback` gave Alexa, checks what an authorization server checks, and puts back what the
/// upstream expects.
///
/// For `authorization_code` requests with a sealed code it:
/// - requires `redirect_uri`, identical to the one of Alexa's authorization request
///   (RFC 6749 §4.1.3);
/// - checks PKCE itself (RFC 7636 §4.6, RFC 9700 §4.8.2): a code issued with Alexa's
///   `code_challenge` needs the matching `code_verifier`, and a code issued without one must
///   not come with a `code_verifier`;
/// - replaces `code` with the upstream's code and `redirect_uri` with the bridge's callback
///   (the URL the upstream bound the code to), and sets the `code_verifier` the upstream
///   expects: Alexa's when it sent a challenge, otherwise the bridge's own, derived again from
///   the state key.
///
/// Every refusal is 400 `invalid_grant` (the code cannot be redeemed), with a description that
/// never shows the code. A code the bridge did not seal (without the `alb1.` prefix) passes to
/// the upstream untouched, unless [`SealedCodeOpener::refuse_plain_codes`] is on. Other grants
/// pass untouched.
///
/// ```
/// use account_link_bridge::authorize::SealedCodeOpener;
/// use account_link_bridge::state::StateSealer;
/// use account_link_bridge::{token_request::NormalizeTokenRequestLayer, Provider};
///
/// let sealer = StateSealer::random(); // the one the AuthorizeRedirect uses
/// let provider = Provider::salesforce().token_request_hook(SealedCodeOpener::new(sealer.clone()));
/// let layer = NormalizeTokenRequestLayer::new().token_request_hook(SealedCodeOpener::new(sealer));
/// # let _ = (provider, layer);
/// ```
#[derive(Clone)]
pub struct SealedCodeOpener {
    sealer: StateSealer,
    refuse_plain_codes: bool,
    state_key_setting: Arc<str>,
    code_lifetime: Duration,
}

impl SealedCodeOpener {
    /// The longest sealed code accepted (and handed out by `/callback`), prefix included:
    /// 4 KiB, enough for an upstream code of about 2.5 KB.
    pub const MAX_SEALED_CODE_LEN: usize = 4096;

    /// An opener for codes sealed by `sealer` (or a sealer sharing one of its keys and its
    /// deployment binding).
    pub fn new(sealer: StateSealer) -> Self {
        SealedCodeOpener {
            sealer: sealer.max_len(Self::MAX_SEALED_CODE_LEN),
            refuse_plain_codes: false,
            state_key_setting: DEFAULT_STATE_KEY_SETTING.into(),
            code_lifetime: AuthorizeRedirectBuilder::DEFAULT_CODE_LIFETIME,
        }
    }

    /// How operators set the state key, named in the INFO line of a code sealed with another
    /// key (see [`AuthorizeRedirectBuilder::state_key_setting`]). Default: "the state key".
    pub fn state_key_setting(mut self, setting: impl Into<String>) -> Self {
        self.state_key_setting = setting.into().into();
        self
    }

    /// The lifetime the codes were sealed with, named in the INFO line of an expired code.
    pub(crate) fn with_code_lifetime(mut self, lifetime: Duration) -> Self {
        self.code_lifetime = lifetime;
        self
    }

    /// Refuses (`invalid_grant`) authorization codes the bridge did not seal. Off by default:
    /// app-to-app account linking and links begun before the middleman was switched on bring
    /// codes minted elsewhere, which the upstream judges itself.
    pub fn refuse_plain_codes(mut self, on: bool) -> Self {
        self.refuse_plain_codes = on;
        self
    }
}

impl fmt::Debug for SealedCodeOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCodeOpener")
            .field("sealer", &self.sealer)
            .field("refuse_plain_codes", &self.refuse_plain_codes)
            .field("state_key_setting", &self.state_key_setting)
            .finish()
    }
}

/// Marks the codes `/callback` hands Alexa, so that a code the bridge did not seal (one that
/// never went through `/callback`, such as the `bridge` server's demo exchange or a link begun
/// before the middleman was switched on) is passed to the upstream untouched, for the upstream
/// to judge. The bridge gains nothing by that: the caller still needs the client credentials.
pub(crate) const SEALED_CODE_PREFIX: &str = "alb1.";

/// Seals a code for Alexa, with the prefix [`SEALED_CODE_PREFIX`]; `None` when the result would
/// be longer than [`SealedCodeOpener::MAX_SEALED_CODE_LEN`] (it could never be redeemed).
pub(crate) fn seal_code(
    sealer: &StateSealer,
    code: &SealedCode,
    lifetime: std::time::Duration,
) -> Option<String> {
    let mut sealed = String::from(SEALED_CODE_PREFIX);
    sealed.push_str(&sealer.seal_for(code, lifetime));
    (sealed.len() <= SealedCodeOpener::MAX_SEALED_CODE_LEN).then_some(sealed)
}

/// The refusal of a code: `invalid_grant` with `description` (Alexa's answer), and one INFO
/// line with the verdict and `cause`, the likely reason in an operator's words.
fn invalid_grant(verdict: &'static str, description: &'static str, cause: &str) -> OAuthError {
    log_refusal(REFUSED_CODE, verdict, cause);
    OAuthError::new(ErrorCode::INVALID_GRANT, StatusCode::BAD_REQUEST).with_description(description)
}

impl TokenRequestHook for SealedCodeOpener {
    fn apply(&self, request: &mut TokenRequest) -> Result<(), OAuthError> {
        if *request.grant_type() != GrantType::AuthorizationCode {
            return Ok(());
        }
        let Some(code) = request.code() else {
            return Err(OAuthError::invalid_request("code is missing"));
        };
        let Some(code) = code.strip_prefix(SEALED_CODE_PREFIX) else {
            if self.refuse_plain_codes {
                return Err(invalid_grant(
                    "plain_code",
                    "the authorization code was not issued by this bridge",
                    "a code the bridge did not seal, refused by the refuse-plain-codes option: a link begun before the middleman was on, app-to-app linking, or a code made up",
                ));
            }
            tracing::debug!(
                target: "account_link_bridge::authorize",
                verdict = "plain code passed through",
                "code not sealed by the bridge"
            );
            return Ok(());
        };
        let sealed: SealedCode = self.sealer.open(code).map_err(|error| {
            let cause = code_refusal_cause(error, &self.state_key_setting, self.code_lifetime);
            let (verdict, description) = match error {
                OpenError::Expired => ("expired", "the authorization code has expired"),
                OpenError::TooLarge => ("too_large", "the authorization code is too long"),
                OpenError::Malformed | OpenError::Tampered => (
                    "tampered_or_wrong_key",
                    "the authorization code was not issued by this bridge or was altered",
                ),
            };
            invalid_grant(verdict, description, &cause)
        })?;
        match request.redirect_uri() {
            None => {
                return Err(invalid_grant(
                    "redirect_uri_missing",
                    "redirect_uri is missing; it must repeat the authorization request's",
                    "Alexa's token request carried no redirect_uri; RFC 6749 requires the one of the authorization request",
                ))
            }
            Some(sent) if sent != sealed.alexa_redirect => {
                return Err(invalid_grant(
                    "redirect_uri_differs",
                    "redirect_uri differs from the one of the authorization request",
                    "the code was issued for another Alexa redirect URL (another skill or region)",
                ))
            }
            Some(_) => {}
        }
        let verifier = match (&sealed.alexa_challenge, request.param("code_verifier")) {
            (Some(challenge), Some(verifier)) => {
                if !constant_time_eq(&s256(verifier), challenge) {
                    return Err(invalid_grant(
                        "pkce_mismatch",
                        "code_verifier does not match the code_challenge",
                        "Alexa's code_verifier does not match the code_challenge it sent to /authorize",
                    ));
                }
                None
            }
            (Some(_), None) => {
                return Err(invalid_grant(
                    "pkce_missing",
                    "code_verifier is missing",
                    "Alexa sent a code_challenge to /authorize but no code_verifier with the code",
                ))
            }
            (None, Some(_)) => {
                return Err(invalid_grant(
                    "pkce_unexpected",
                    "code_verifier was sent for a code issued without code_challenge",
                    "a code_verifier came with a code whose authorization request had no code_challenge",
                ))
            }
            (None, None) => match sealed.pkce_key {
                // A code whose state promised the bridge's PKCE is never redeemed without it.
                Some(hint) => Some(
                    rederive_verifier(&self.sealer, hint, &sealed.id).ok_or_else(|| {
                        invalid_grant(
                            "key_no_longer_held",
                            "the authorization code was sealed with a key no longer held",
                            &format!(
                                "the key the code was sealed under is no longer in {}: it was rotated out while the link was in flight",
                                self.state_key_setting
                            ),
                        )
                    })?,
                ),
                None => None,
            },
        };
        request.set_param("code", sealed.upstream_code);
        request.set_param("redirect_uri", sealed.callback_url);
        if let Some(verifier) = verifier {
            request.set_param("code_verifier", verifier);
        }
        tracing::debug!(
            target: "account_link_bridge::authorize",
            verdict = "sealed code opened",
            "sealed code replaced by the upstream's"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";
    const ALEXA_VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const ALEXA_CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn sealed(
        sealer: &StateSealer,
        pkce_key: Option<u32>,
        alexa_challenge: Option<&str>,
    ) -> String {
        seal_code(
            sealer,
            &SealedCode {
                upstream_code: "aPrx-upstream".into(),
                callback_url: "https://bridge.example.com/callback".into(),
                alexa_redirect: ALEXA.into(),
                id: "state-id".into(),
                pkce_key,
                alexa_challenge: alexa_challenge.map(Into::into),
            },
            std::time::Duration::from_secs(60),
        )
        .unwrap()
    }

    fn request(body: &str) -> TokenRequest {
        TokenRequest::parse(&HeaderMap::new(), body.as_bytes()).unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        serde_urlencoded::to_string(pairs).unwrap()
    }

    fn exchange(code: &str, extra: &[(&str, &str)]) -> TokenRequest {
        let mut pairs = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", ALEXA),
        ];
        pairs.extend_from_slice(extra);
        request(&form(&pairs))
    }

    fn refusal(opener: &SealedCodeOpener, mut request: TokenRequest) -> String {
        let error = opener.apply(&mut request).unwrap_err();
        assert_eq!(error.code(), &ErrorCode::INVALID_GRANT);
        assert_eq!(error.status(), 400);
        error.description().unwrap().to_owned()
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(s256(ALEXA_VERIFIER), ALEXA_CHALLENGE);
    }

    #[test]
    fn a_code_the_bridge_did_not_seal_passes_through_untouched() {
        let opener = SealedCodeOpener::new(StateSealer::random());
        let mut r = exchange("plain-upstream-code", &[]);
        opener.apply(&mut r).unwrap();
        assert_eq!(r.code(), Some("plain-upstream-code"));
        assert_eq!(r.redirect_uri(), Some(ALEXA));
    }

    #[test]
    fn plain_codes_are_refused_when_asked() {
        let opener = SealedCodeOpener::new(StateSealer::random()).refuse_plain_codes(true);
        let description = refusal(&opener, exchange("plain-upstream-code", &[]));
        assert!(description.contains("not issued by this bridge"));
        // Refresh grants are not codes: untouched.
        let mut r = request(&form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt"),
        ]));
        opener.apply(&mut r).unwrap();
    }

    #[test]
    fn a_sealed_code_is_replaced_by_the_upstream_code_callback_and_derived_verifier() {
        let sealer = StateSealer::random();
        let (hint, verifier) = bridge_verifier(&sealer, "state-id");
        let code = sealed(&sealer, Some(hint), None);
        // The verifier is not inside the code: a code sealed without the hint gets none.
        let mut r = exchange(&code, &[]);
        SealedCodeOpener::new(sealer.clone()).apply(&mut r).unwrap();
        assert_eq!(r.code(), Some("aPrx-upstream"));
        assert_eq!(
            r.redirect_uri(),
            Some("https://bridge.example.com/callback")
        );
        assert_eq!(r.param("code_verifier"), Some(verifier.as_str()));
        assert_eq!(verifier.len(), 43);
        let mut r = exchange(&sealed(&sealer, None, None), &[]);
        SealedCodeOpener::new(sealer).apply(&mut r).unwrap();
        assert_eq!(r.param("code_verifier"), None);
    }

    #[test]
    fn the_bridge_verifier_never_travels_in_the_sealed_code() {
        let sealer = StateSealer::new([crate::state::StateKey::from_bytes([5; 32])]).unwrap();
        let (hint, verifier) = bridge_verifier(&sealer, "state-id");
        let code = sealed(&sealer, Some(hint), None);
        let opened: SealedCode = sealer
            .max_len(8192)
            .open(&code[SEALED_CODE_PREFIX.len()..])
            .unwrap();
        let json = serde_json::to_string(&opened).unwrap();
        assert!(!json.contains(&verifier), "{json}");
    }

    #[test]
    fn a_code_without_the_key_its_verifier_was_derived_under_is_refused() {
        let old = StateSealer::new([crate::state::StateKey::from_bytes([1; 32])]).unwrap();
        let new = StateSealer::new([crate::state::StateKey::from_bytes([2; 32])]).unwrap();
        let (hint, _) = bridge_verifier(&old, "state-id");
        // Sealed by the new key, but promising a verifier under the old one, now gone.
        let code = sealed(&new, Some(hint), None);
        let description = refusal(&SealedCodeOpener::new(new), exchange(&code, &[]));
        assert!(description.contains("no longer held"));
    }

    #[test]
    fn alexas_pkce_is_checked_by_the_bridge() {
        let sealer = StateSealer::random();
        let opener = SealedCodeOpener::new(sealer.clone());
        let with = sealed(&sealer, None, Some(ALEXA_CHALLENGE));
        let mut ok = exchange(&with, &[("code_verifier", ALEXA_VERIFIER)]);
        opener.apply(&mut ok).unwrap();
        assert_eq!(ok.param("code_verifier"), Some(ALEXA_VERIFIER));
        assert!(refusal(&opener, exchange(&with, &[])).contains("code_verifier is missing"));
        assert!(refusal(
            &opener,
            exchange(
                &with,
                &[("code_verifier", "wrong-verifier-wrong-verifier-wrong-veri")]
            )
        )
        .contains("does not match"));
        // A verifier for a code issued without a challenge: the downgrade of RFC 9700 §4.8.2.
        let without = sealed(&sealer, None, None);
        assert!(refusal(
            &opener,
            exchange(&without, &[("code_verifier", ALEXA_VERIFIER)])
        )
        .contains("issued without code_challenge"));
    }

    #[test]
    fn redirect_uri_is_required_and_must_be_identical() {
        let sealer = StateSealer::random();
        let opener = SealedCodeOpener::new(sealer.clone());
        let code = sealed(&sealer, None, None);
        let missing = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
        ]));
        assert!(refusal(&opener, missing).contains("redirect_uri is missing"));
        for other in [
            "https://pitangui.amazon.com/api/skill/link/M3BVP74N95SP1F",
            "https://LAYLA.amazon.com/api/skill/link/M3BVP74N95SP1F",
            "https://layla.amazon.com:443/api/skill/link/M3BVP74N95SP1F",
        ] {
            let r = request(&form(&[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", other),
            ]));
            assert!(refusal(&opener, r).contains("differs"), "{other}");
        }
    }

    #[test]
    fn a_foreign_code_is_invalid_grant_without_echo() {
        let code = sealed(&StateSealer::random(), None, None);
        let mut r = exchange(&code, &[]);
        let error = SealedCodeOpener::new(StateSealer::random())
            .apply(&mut r)
            .unwrap_err();
        assert_eq!(error.code(), &ErrorCode::INVALID_GRANT);
        assert!(!error.to_json().contains(&code[..20]));
    }

    #[test]
    fn an_expired_code_is_invalid_grant() {
        let sealer = StateSealer::random();
        let code = seal_code(
            &sealer,
            &SealedCode {
                upstream_code: "c".into(),
                callback_url: "https://bridge.example.com/callback".into(),
                alexa_redirect: ALEXA.into(),
                id: "i".into(),
                pkce_key: None,
                alexa_challenge: None,
            },
            std::time::Duration::ZERO,
        )
        .unwrap();
        let description = refusal(&SealedCodeOpener::new(sealer), exchange(&code, &[]));
        assert_eq!(description, "the authorization code has expired");
    }

    #[test]
    fn codes_up_to_4_kib_open_and_longer_ones_are_not_sealed() {
        let sealer = StateSealer::random();
        let code = |upstream: String| SealedCode {
            upstream_code: upstream,
            callback_url: "https://bridge.example.com/callback".into(),
            alexa_redirect: ALEXA.into(),
            id: "i".into(),
            pkce_key: None,
            alexa_challenge: None,
        };
        let long = seal_code(
            &sealer,
            &code("x".repeat(1500)),
            std::time::Duration::from_secs(60),
        )
        .unwrap();
        assert!(long.len() > StateSealer::DEFAULT_MAX_LEN);
        let mut r = exchange(&long, &[]);
        SealedCodeOpener::new(sealer.clone()).apply(&mut r).unwrap();
        assert_eq!(r.code().map(str::len), Some(1500));
        assert!(seal_code(
            &sealer,
            &code("x".repeat(4000)),
            std::time::Duration::from_secs(60)
        )
        .is_none());
    }

    #[test]
    fn a_state_cannot_be_replayed_as_a_code() {
        let sealer = StateSealer::random();
        let state = sealer.seal(&AuthorizeState {
            alexa_state: "s".into(),
            alexa_redirect: ALEXA.into(),
            id: "i".into(),
            pkce_key: None,
            alexa_challenge: None,
        });
        let replayed = format!("{SEALED_CODE_PREFIX}{state}");
        refusal(&SealedCodeOpener::new(sealer), exchange(&replayed, &[]));
    }

    #[test]
    fn refresh_requests_pass_untouched() {
        let mut r = request(&form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", "rt"),
        ]));
        SealedCodeOpener::new(StateSealer::random())
            .apply(&mut r)
            .unwrap();
        assert_eq!(r.refresh_token(), Some("rt"));
        assert_eq!(r.code(), None);
    }
}

//! The sealed code Alexa receives from `/callback`, and its opener at the token endpoint.

use std::fmt;

use http::StatusCode;
use serde::{Deserialize, Serialize};
use url::Url;

use crate::state::{OpenError, SealedPayload, StateSealer};
use crate::token_request::{GrantType, TokenRequest};
use crate::{ErrorCode, OAuthError, TokenRequestHook};

/// What the bridge remembers between `/authorize` and `/callback`, sealed into the upstream
/// `state`.
#[derive(Serialize, Deserialize)]
pub(crate) struct AuthorizeState {
    /// Alexa's `state`, given back unchanged.
    #[serde(rename = "s")]
    pub(crate) alexa_state: String,
    /// Alexa's checked `redirect_uri`.
    #[serde(rename = "r")]
    pub(crate) alexa_redirect: String,
    /// The PKCE verifier the bridge made, if it did.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub(crate) verifier: Option<String>,
}

impl SealedPayload for AuthorizeState {
    const PURPOSE: &'static str = "account-link-bridge/authorize-state/v1";
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
    /// Alexa's `redirect_uri`, which its token request must repeat (RFC 6749 §4.1.3).
    #[serde(rename = "a")]
    pub(crate) alexa_redirect: String,
    /// The PKCE verifier the bridge made, if it did.
    #[serde(rename = "v", default, skip_serializing_if = "Option::is_none")]
    pub(crate) verifier: Option<String>,
}

impl SealedPayload for SealedCode {
    const PURPOSE: &'static str = "account-link-bridge/sealed-code/v1";
}

/// The token-endpoint half of the middleman: a [`TokenRequestHook`] that opens the sealed code
/// `/callback` gave Alexa and puts back what the upstream expects.
///
/// For `authorization_code` requests it replaces `code` with the upstream's code, sets
/// `redirect_uri` to the bridge's callback (the URL the upstream bound the code to), and adds
/// the `code_verifier` the bridge made, unless Alexa sent its own. A code that does not open
/// (altered, expired, sealed under another key) is refused with 400 `invalid_grant`, whose
/// description never shows the code; so is a `redirect_uri` other than the one Alexa used at
/// `/authorize`. Other grants pass untouched.
///
/// ```
/// use account_link_bridge::authorize::SealedCodeOpener;
/// use account_link_bridge::state::StateSealer;
/// use account_link_bridge::{NormalizeTokenRequestLayer, Provider};
///
/// let sealer = StateSealer::random(); // the one the AuthorizeRedirect uses
/// let provider = Provider::salesforce().token_request_hook(SealedCodeOpener::new(sealer.clone()));
/// let layer = NormalizeTokenRequestLayer::new().hook(SealedCodeOpener::new(sealer));
/// # let _ = (provider, layer);
/// ```
#[derive(Clone)]
pub struct SealedCodeOpener {
    sealer: StateSealer,
}

impl SealedCodeOpener {
    /// An opener for codes sealed by `sealer` (or a sealer sharing one of its keys).
    pub fn new(sealer: StateSealer) -> Self {
        SealedCodeOpener { sealer }
    }
}

impl fmt::Debug for SealedCodeOpener {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SealedCodeOpener")
            .field("sealer", &self.sealer)
            .finish()
    }
}

/// Marks the codes `/callback` hands Alexa, so that a code the bridge did not seal (one that
/// never went through `/callback`, such as the `bridge` example's demo exchange or a link begun
/// before the middleman was switched on) is passed to the upstream untouched, for the upstream
/// to judge. The bridge gains nothing by that: the caller still needs the client credentials.
pub(crate) const SEALED_CODE_PREFIX: &str = "alb1.";

/// Seals a code for Alexa, with the prefix [`SEALED_CODE_PREFIX`].
pub(crate) fn seal_code(
    sealer: &StateSealer,
    code: &SealedCode,
    lifetime: std::time::Duration,
) -> String {
    let mut sealed = String::from(SEALED_CODE_PREFIX);
    sealed.push_str(&sealer.seal_for(code, lifetime));
    sealed
}

fn invalid_grant(description: &'static str) -> OAuthError {
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
            tracing::debug!(
                target: "account_link_bridge::authorize",
                verdict = "plain code passed through",
                "code not sealed by the bridge"
            );
            return Ok(());
        };
        let sealed: SealedCode = self.sealer.open(code).map_err(|error| {
            tracing::debug!(
                target: "account_link_bridge::authorize",
                verdict = error.reason(),
                "sealed code refused"
            );
            invalid_grant(match error {
                OpenError::Expired => "the authorization code has expired",
                OpenError::TooLarge => "the authorization code is too long",
                OpenError::Malformed | OpenError::Tampered => {
                    "the authorization code was not issued by this bridge or was altered"
                }
            })
        })?;
        if let Some(redirect_uri) = request.redirect_uri() {
            let same = Url::parse(redirect_uri)
                .ok()
                .zip(Url::parse(&sealed.alexa_redirect).ok())
                .is_some_and(|(sent, sealed)| sent == sealed);
            if !same {
                return Err(invalid_grant(
                    "redirect_uri differs from the one of the authorization request",
                ));
            }
        }
        request.set_param("code", sealed.upstream_code);
        request.set_param("redirect_uri", sealed.callback_url);
        if let Some(verifier) = sealed.verifier {
            if request.param("code_verifier").is_none() {
                request.set_param("code_verifier", verifier);
            }
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

    fn sealed_code(sealer: &StateSealer, verifier: Option<&str>) -> String {
        let sealed = sealer.seal(&SealedCode {
            upstream_code: "aPrx-upstream".into(),
            callback_url: "https://bridge.example.com/callback".into(),
            alexa_redirect: ALEXA.into(),
            verifier: verifier.map(Into::into),
        });
        format!("{SEALED_CODE_PREFIX}{sealed}")
    }

    #[test]
    fn a_code_the_bridge_did_not_seal_passes_through_untouched() {
        let opener = SealedCodeOpener::new(StateSealer::random());
        let body = form(&[
            ("grant_type", "authorization_code"),
            ("code", "plain-upstream-code"),
            ("redirect_uri", ALEXA),
        ]);
        let mut r = request(&body);
        opener.apply(&mut r).unwrap();
        assert_eq!(r.code(), Some("plain-upstream-code"));
        assert_eq!(r.redirect_uri(), Some(ALEXA));
    }

    fn request(body: &str) -> TokenRequest {
        TokenRequest::parse(&HeaderMap::new(), body.as_bytes()).unwrap()
    }

    fn form(pairs: &[(&str, &str)]) -> String {
        serde_urlencoded::to_string(pairs).unwrap()
    }

    #[test]
    fn a_sealed_code_is_replaced_by_the_upstream_code_and_callback() {
        let sealer = StateSealer::random();
        let code = sealed_code(&sealer, Some("bridge-verifier"));
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", ALEXA),
        ]));
        SealedCodeOpener::new(sealer).apply(&mut r).unwrap();
        assert_eq!(r.code(), Some("aPrx-upstream"));
        assert_eq!(
            r.redirect_uri(),
            Some("https://bridge.example.com/callback")
        );
        assert_eq!(r.param("code_verifier"), Some("bridge-verifier"));
    }

    #[test]
    fn alexas_own_code_verifier_is_kept() {
        let sealer = StateSealer::random();
        let code = sealed_code(&sealer, Some("bridge-verifier"));
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", "alexa-verifier"),
        ]));
        SealedCodeOpener::new(sealer).apply(&mut r).unwrap();
        assert_eq!(r.param("code_verifier"), Some("alexa-verifier"));
    }

    #[test]
    fn a_foreign_code_is_invalid_grant_without_echo() {
        let code = sealed_code(&StateSealer::random(), None);
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
        ]));
        let error = SealedCodeOpener::new(StateSealer::random())
            .apply(&mut r)
            .unwrap_err();
        assert_eq!(error.code(), &ErrorCode::INVALID_GRANT);
        assert_eq!(error.status(), 400);
        assert!(!error.to_json().contains(&code[..20]));
    }

    #[test]
    fn an_expired_code_is_invalid_grant() {
        let sealer = StateSealer::random().lifetime(std::time::Duration::ZERO);
        let code = sealed_code(&sealer, None);
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
        ]));
        let error = SealedCodeOpener::new(sealer).apply(&mut r).unwrap_err();
        assert_eq!(
            error.description(),
            Some("the authorization code has expired")
        );
    }

    #[test]
    fn a_state_cannot_be_replayed_as_a_code() {
        let sealer = StateSealer::random();
        let state = sealer.seal(&AuthorizeState {
            alexa_state: "s".into(),
            alexa_redirect: ALEXA.into(),
            verifier: None,
        });
        let replayed = format!("{SEALED_CODE_PREFIX}{state}");
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &replayed),
        ]));
        let error = SealedCodeOpener::new(sealer).apply(&mut r).unwrap_err();
        assert_eq!(error.code(), &ErrorCode::INVALID_GRANT);
    }

    #[test]
    fn another_redirect_uri_than_at_authorize_is_refused() {
        let sealer = StateSealer::random();
        let code = sealed_code(&sealer, None);
        let mut r = request(&form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            (
                "redirect_uri",
                "https://pitangui.amazon.com/api/skill/link/OTHER",
            ),
        ]));
        let error = SealedCodeOpener::new(sealer).apply(&mut r).unwrap_err();
        assert_eq!(error.code(), &ErrorCode::INVALID_GRANT);
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

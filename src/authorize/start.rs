//! `GET /authorize`: where the round trip starts. Alexa's request is checked, what must come
//! back is sealed into the upstream's `state`, and the browser is sent upstream.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::Response;

use super::code::{bridge_verifier, s256, AuthorizeState};
use super::page::{debug_verdict, redirect, refused, to_alexa_error, TARGET};
use super::report::{AuthorizeReport, AuthorizeVerdict};
use super::service::{Params, Repeated};
use super::{Config, GrantMode};
use crate::body::FullBody;
use crate::oauth::ErrorCode;
use crate::state::fill_random;

/// The longest `state` accepted from Alexa, in bytes (its length limit is undocumented; the
/// sealed state must stay under the sealer's size bound).
const MAX_ALEXA_STATE: usize = 1024;

/// `GET /authorize`: check Alexa's request, seal what must come back, send the browser upstream.
pub(super) fn authorize(
    config: &Config,
    params: &Params,
    report: &mut AuthorizeReport,
) -> Response<FullBody> {
    let Ok(raw_redirect) = params.single("redirect_uri") else {
        return refused(report, "redirect_uri is repeated");
    };
    let raw_redirect = raw_redirect.unwrap_or("");
    let alexa_redirect = match config.redirects.check(raw_redirect) {
        Ok(url) => url,
        Err(refusal) => {
            report.accepted_redirects = Some(config.redirects.accepted().join(" "));
            return refused(report, refusal.reason());
        }
    };
    report.redirect(&alexa_redirect);
    let alexa_state = match params.single("state") {
        Err(Repeated) => return refused(report, "state is repeated"),
        Ok(None) => return refused(report, "state is missing"),
        Ok(Some(state)) if state.len() > MAX_ALEXA_STATE => {
            return refused(report, "state is too long")
        }
        Ok(Some(state)) => state,
    };
    let mode = config.grant_mode();
    // From here on the redirect URL is trusted: errors go back to Alexa (RFC 6749 §4.1.2.1).
    let mut fail = |code: ErrorCode, description: &'static str| {
        debug_verdict(description);
        report.verdict(AuthorizeVerdict::ErrorToAlexa, description);
        to_alexa_error(mode, &alexa_redirect, alexa_state, &code, Some(description))
    };
    let (Ok(response_type), Ok(scope), Ok(client_id), Ok(challenge), Ok(method)) = (
        params.single("response_type"),
        params.single("scope"),
        params.single("client_id"),
        params.single("code_challenge"),
        params.single("code_challenge_method"),
    ) else {
        return fail(ErrorCode::INVALID_REQUEST, "a parameter is repeated");
    };
    let expected = match mode {
        GrantMode::Code => "code",
        GrantMode::Implicit => "token",
    };
    if response_type.is_some_and(|t| t != expected) {
        return fail(
            ErrorCode::new("unsupported_response_type"),
            "the response_type is not the one this bridge serves",
        );
    }
    let Some(client_id) = config.client_id.as_deref().or(client_id) else {
        return fail(ErrorCode::INVALID_REQUEST, "client_id is missing");
    };
    let scope = config.scope.as_deref().or(scope);
    // In implicit mode Alexa never redeems a code, so its challenge could not be answered.
    let alexa_challenge = challenge.filter(|_| mode == GrantMode::Code);
    if let Some(challenge) = alexa_challenge {
        // RFC 9700 §2.1.1: S256 only. `plain` (also the default when no method is named, RFC
        // 7636 §4.3) protects nothing once the challenge has been seen, so it is refused.
        if method != Some("S256") {
            return fail(
                ErrorCode::INVALID_REQUEST,
                "code_challenge_method must be S256",
            );
        }
        if !is_s256_challenge(challenge) {
            return fail(
                ErrorCode::INVALID_REQUEST,
                "code_challenge is not an S256 challenge",
            );
        }
    }
    let id = new_state_id();
    let (challenge, pkce_key) = match alexa_challenge {
        Some(challenge) => (Some(challenge.to_owned()), None),
        // Implicit mode always makes the bridge's pair: without it an attacker holding a
        // victim's upstream code and a state of his own could have it exchanged at /callback.
        None if config.pkce || mode == GrantMode::Implicit => {
            let (hint, verifier) = bridge_verifier(&config.sealer, &id);
            (Some(s256(&verifier)), Some(hint))
        }
        None => (None, None),
    };
    let pkce = match (pkce_key, alexa_challenge) {
        (Some(_), _) => "bridge",
        (None, Some(_)) => "alexa",
        (None, None) => "none",
    };
    let sealed = config.sealer.seal(&AuthorizeState {
        alexa_state: alexa_state.to_owned(),
        alexa_redirect: raw_redirect.to_owned(),
        id,
        pkce_key,
        alexa_challenge: alexa_challenge.map(str::to_owned),
    });
    if sealed.len() > config.sealer.max_len_value() {
        return refused(report, "state is too long");
    }
    let mut upstream = config.upstream_authorize_url.clone();
    {
        let mut query = upstream.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id);
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
        query
            .append_pair("redirect_uri", config.callback_url.as_str())
            .append_pair("state", &sealed);
        if let Some(challenge) = &challenge {
            query.append_pair("code_challenge", challenge);
        }
        if challenge.is_some() {
            query.append_pair("code_challenge_method", "S256");
        }
    }
    tracing::debug!(
        target: TARGET,
        verdict = "sent to the authorization server",
        pkce,
        "authorize"
    );
    report.verdict(
        AuthorizeVerdict::SentUpstream,
        "sent to the authorization server",
    );
    redirect(&upstream)
}

/// A state's random id: 16 random bytes as 22 characters of base64url.
fn new_state_id() -> String {
    let mut bytes = [0; 16];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `challenge` can be an S256 challenge: the base64url of 32 bytes, 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::super::testing::{get, location, query, service, ALEXA};
    use super::*;
    use http::header::{
        CACHE_CONTROL, CONTENT_SECURITY_POLICY, LOCATION, REFERRER_POLICY, X_FRAME_OPTIONS,
    };
    use http::StatusCode;

    #[tokio::test]
    async fn authorize_keeps_the_upstream_query_and_appends_its_parameters_in_order() {
        let s = service(|b| b.client_id("bridge-id").scope("api refresh_token"));
        let response = get(
            &s,
            &[
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("client_id", "alexa"),
                ("scope", "ignored"),
            ],
            "/authorize",
        )
        .await;
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[REFERRER_POLICY], "no-referrer");
        let url = location(&response);
        let pairs = query(&url);
        let names: Vec<_> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "prompt",
                "response_type",
                "client_id",
                "scope",
                "redirect_uri",
                "state"
            ]
        );
        assert_eq!(pairs[2].1, "bridge-id");
        assert_eq!(pairs[3].1, "api refresh_token");
        assert_eq!(pairs[4].1, "https://bridge.example.com/callback");
        let state: AuthorizeState = s.sealer().open(&pairs[5].1).unwrap();
        assert_eq!(state.alexa_state, "S");
        assert_eq!(state.alexa_redirect, ALEXA);
        assert!(state.pkce_key.is_none());
        assert!(state.alexa_challenge.is_none());
    }

    #[tokio::test]
    async fn alexas_client_id_is_used_when_none_is_configured() {
        let s = service(|b| b);
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("client_id", "alexa"),
                ],
                "/authorize",
            )
            .await,
        );
        assert!(query(&url).contains(&("client_id".into(), "alexa".into())));
        let url =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let back: Vec<_> = query(&url);
        assert_eq!(url.host_str(), Some("layla.amazon.com"));
        assert_eq!(back[0], ("error".into(), "invalid_request".into()));
        assert_eq!(back[2], ("state".into(), "S".into()));
    }

    #[tokio::test]
    async fn a_wrong_response_type_goes_back_to_alexa_as_an_error() {
        let s = service(|b| b.client_id("id"));
        let response = get(
            &s,
            &[
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("response_type", "token"),
            ],
            "/authorize",
        )
        .await;
        let url = location(&response);
        assert_eq!(url.host_str(), Some("layla.amazon.com"));
        assert!(query(&url).contains(&("error".into(), "unsupported_response_type".into())));
    }

    #[tokio::test]
    async fn an_overlong_alexa_state_is_refused_without_redirect() {
        let s = service(|b| b.client_id("id"));
        let long = "s".repeat(MAX_ALEXA_STATE + 1);
        let response = get(
            &s,
            &[("state", &long), ("redirect_uri", ALEXA)],
            "/authorize",
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(LOCATION).is_none());
        assert!(std::str::from_utf8(response.body().as_bytes())
            .unwrap()
            .contains("state is too long"));
        assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            response.headers()[CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }

    #[tokio::test]
    async fn a_plain_or_unnamed_challenge_method_goes_back_to_alexa_as_invalid_request() {
        let s = service(|b| b.client_id("id"));
        let challenge = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        for method in [Some("plain"), None, Some("s256"), Some("S512")] {
            let mut pairs = vec![
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("code_challenge", challenge.as_str()),
            ];
            if let Some(method) = method {
                pairs.push(("code_challenge_method", method));
            }
            let url = location(&get(&s, &pairs, "/authorize").await);
            assert_eq!(url.host_str(), Some("layla.amazon.com"), "{method:?}");
            let back = query(&url);
            assert_eq!(back[0], ("error".into(), "invalid_request".into()));
            assert!(back[1].1.contains("S256"), "{method:?}");
        }
        // A challenge that cannot be an S256 one.
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
                "/authorize",
            )
            .await,
        );
        assert_eq!(query(&url)[0].1, "invalid_request");
    }

    #[tokio::test]
    async fn alexas_challenge_is_sealed_and_passed_upstream() {
        let s = service(|b| b.client_id("id").pkce(true));
        let challenge = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256"),
                ],
                "/authorize",
            )
            .await,
        );
        let pairs = query(&url);
        let find = |name: &str| pairs.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(find("code_challenge"), challenge);
        assert_eq!(find("code_challenge_method"), "S256");
        let state: AuthorizeState = s.sealer().open(&find("state")).unwrap();
        assert_eq!(state.alexa_challenge.as_deref(), Some(challenge.as_str()));
        // Alexa's pair replaces the bridge's.
        assert!(state.pkce_key.is_none());
    }
}

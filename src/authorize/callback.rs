//! `GET /callback`: where the round trip ends. The state is opened and claimed (single use),
//! then Alexa gets a sealed code, the token (implicit mode), or the error.

use std::sync::Arc;

use http::{Response, StatusCode};
use url::Url;

use super::code::{rederive_verifier, seal_code, AuthorizeState, SealedCode};
use super::future::ResponseFuture;
use super::implicit::{token_request, truncate, TokenAnswer};
use super::page::{debug_verdict, redirect, refused, to_alexa_error};
use super::report::{
    log_refusal, state_refusal_cause, AuthorizeReport, AuthorizeVerdict, StateVerdict,
    REFUSED_STATE,
};
use super::service::{Params, Repeated};
use super::single_use::Claim;
use super::{Config, GrantMode};
use crate::body::FullBody;
use crate::fingerprint::Fingerprint;
use crate::oauth::{ErrorCode, OAuthError};

/// `GET /callback`: open the state, claim it (single use), then hand Alexa a sealed code, the
/// token, or the error.
pub(super) fn callback(
    config: &Arc<Config>,
    params: Params,
    mut report: AuthorizeReport,
) -> ResponseFuture {
    let refuse = |mut report: AuthorizeReport, verdict, reason| {
        log_state_refusal(config, verdict);
        report.state = Some(verdict);
        ResponseFuture::ready(refused(&mut report, reason)).with_report(report)
    };
    let sealed = match params.single("state") {
        Err(Repeated) => return refuse(report, StateVerdict::Missing, "state is repeated"),
        Ok(None) => return refuse(report, StateVerdict::Missing, "state is missing"),
        Ok(Some(sealed)) => sealed,
    };
    let (state, expiry): (AuthorizeState, u64) = match config.sealer.open_with_expiry(sealed) {
        Ok(opened) => opened,
        Err(error) => return refuse(report, StateVerdict::from(&error), error.reason()),
    };
    // Checked again: the allow-list (a vendor pin, say) may have changed since /authorize.
    let Ok(alexa_redirect) = config.redirects.check(&state.alexa_redirect) else {
        let accepted = config.redirects.accepted().join(" ");
        log_refusal(
            REFUSED_STATE,
            "redirect_no_longer_allowed",
            &format!("its Alexa redirect URL was allowed at /authorize but is not now (the vendor pin or the redirect hosts changed); accepted: {accepted}"),
        );
        report.accepted_redirects = Some(accepted);
        report.state = Some(StateVerdict::Ok);
        return ResponseFuture::ready(refused(
            &mut report,
            "the state's redirect_uri is no longer allowed",
        ))
        .with_report(report);
    };
    report.redirect(&alexa_redirect);
    let claim = config.nonce_cache.claim(state.id.as_bytes(), expiry);
    let config = Arc::clone(config);
    // Boxed: /callback runs once per account link and waits on the nonce cache and, in
    // implicit mode, on a token exchange; one allocation is nothing next to those.
    ResponseFuture::pending(Box::pin(async move {
        let response = match claim.await {
            Ok(Claim::First) => {
                report.state = Some(StateVerdict::Ok);
                claimed(&config, &params, state, alexa_redirect, &mut report).await
            }
            Ok(Claim::Replayed) => {
                log_state_refusal(&config, StateVerdict::Replayed);
                report.state = Some(StateVerdict::Replayed);
                refused(&mut report, "the state was already used")
            }
            Err(error) => {
                // A cache or store fault never blocks a link: the state opened, so it is
                // genuine and unexpired; only its single use goes unchecked this once.
                tracing::warn!(
                    target: "account_link_bridge::authorize",
                    reason = error.reason(),
                    "the state's single use could not be checked; accepted"
                );
                report.state = Some(StateVerdict::OkUnchecked);
                claimed(&config, &params, state, alexa_redirect, &mut report).await
            }
        };
        (response, report)
    }))
}

/// The INFO line of a refused state, with its likely cause.
fn log_state_refusal(config: &Config, verdict: StateVerdict) {
    let lifetime = config.sealer.default_lifetime();
    if let Some(cause) = state_refusal_cause(verdict, &config.state_key_setting, lifetime) {
        log_refusal(REFUSED_STATE, verdict.as_str(), &cause);
    }
}

/// The part of `/callback` after the state was claimed.
async fn claimed(
    config: &Config,
    params: &Params,
    state: AuthorizeState,
    alexa_redirect: Url,
    report: &mut AuthorizeReport,
) -> Response<FullBody> {
    let mode = config.grant_mode();
    let alexa_state = state.alexa_state.as_str();
    let (Ok(error), Ok(description), Ok(code)) = (
        params.single("error"),
        params.single("error_description"),
        params.single("code"),
    ) else {
        return to_alexa_failure(
            config,
            &alexa_redirect,
            alexa_state,
            report,
            "the authorization server repeated a parameter",
        );
    };
    if let Some(error) = error {
        // Cleaned to RFC 6749's character set, then relayed (RFC 6749 §4.1.2.1).
        let relayed = OAuthError::new(ErrorCode::new(error.to_owned()), StatusCode::BAD_REQUEST);
        let relayed = match description {
            Some(description) => relayed.with_description(truncate(description).to_owned()),
            None => relayed,
        };
        debug_verdict("the authorization server refused; relayed to Alexa");
        report.upstream_error = Some(relayed.code().as_str().chars().take(40).collect());
        report.verdict(
            AuthorizeVerdict::ErrorToAlexa,
            "the authorization server refused; relayed to Alexa",
        );
        return to_alexa_error(
            mode,
            &alexa_redirect,
            alexa_state,
            relayed.code(),
            relayed.description(),
        );
    }
    let Some(code) = code else {
        return to_alexa_failure(
            config,
            &alexa_redirect,
            alexa_state,
            report,
            "the authorization server sent no code",
        );
    };
    report.code = Some(Fingerprint::of(code));
    match &config.token_service {
        None => {
            let sealed_code = seal_code(
                &config.sealer,
                &SealedCode {
                    upstream_code: code.to_owned(),
                    callback_url: config.callback_url.to_string(),
                    alexa_redirect: state.alexa_redirect.clone(),
                    id: state.id.clone(),
                    pkce_key: state.pkce_key,
                    alexa_challenge: state.alexa_challenge.clone(),
                },
                config.code_lifetime,
            );
            // Alexa would get a code it could never redeem: say so now instead.
            let Some(sealed_code) = sealed_code else {
                return to_alexa_failure(
                    config,
                    &alexa_redirect,
                    alexa_state,
                    report,
                    "the authorization server's code is too long to seal",
                );
            };
            let mut location = alexa_redirect;
            location
                .query_pairs_mut()
                .append_pair("state", alexa_state)
                .append_pair("code", &sealed_code);
            debug_verdict("code sealed and sent to Alexa");
            report.verdict(
                AuthorizeVerdict::CodeToAlexa,
                "code sealed and sent to Alexa",
            );
            redirect(&location)
        }
        Some(token_service) => {
            // Implicit mode always made the bridge's pair at /authorize.
            let verifier = state
                .pkce_key
                .and_then(|hint| rederive_verifier(&config.sealer, hint, &state.id));
            let Some(verifier) = verifier else {
                log_refusal(
                    REFUSED_STATE,
                    "key_no_longer_held",
                    &format!(
                        "the key the state was sealed under is no longer in {}: it was rotated out while the link was in flight",
                        config.state_key_setting
                    ),
                );
                return to_alexa_failure(
                    config,
                    &alexa_redirect,
                    alexa_state,
                    report,
                    "the state was sealed with a key no longer held",
                );
            };
            let answer = token_service
                .call(token_request(
                    code,
                    config.callback_url.as_str(),
                    config.client_id.as_deref(),
                    config.client_secret.as_deref(),
                    Some(&verifier),
                ))
                .await;
            implicit_redirect(answer, alexa_redirect, alexa_state, Some(report))
        }
    }
}

/// A fault of the bridge or the upstream after the state was trusted: `server_error` to
/// Alexa's redirect URL (never `invalid_grant`).
fn to_alexa_failure(
    config: &Config,
    alexa_redirect: &Url,
    alexa_state: &str,
    report: &mut AuthorizeReport,
    reason: &'static str,
) -> Response<FullBody> {
    debug_verdict(reason);
    report.verdict(AuthorizeVerdict::ErrorToAlexa, reason);
    to_alexa_error(
        config.grant_mode(),
        alexa_redirect,
        alexa_state,
        &ErrorCode::SERVER_ERROR,
        Some(reason),
    )
}

/// The implicit grant's redirect: the token or the error in the fragment.
fn implicit_redirect(
    answer: TokenAnswer,
    mut alexa_redirect: Url,
    alexa_state: &str,
    report: Option<&mut AuthorizeReport>,
) -> Response<FullBody> {
    let verdict = |verdict, reason| {
        if let Some(report) = report {
            report.verdict(verdict, reason);
        }
    };
    match answer {
        TokenAnswer::Token {
            access_token,
            token_type,
            expires_in,
        } => {
            let mut fragment = form_urlencoded::Serializer::new(String::new());
            fragment
                .append_pair("state", alexa_state)
                .append_pair("access_token", &access_token)
                .append_pair("token_type", &token_type);
            if let Some(expires_in) = expires_in {
                fragment.append_pair("expires_in", &expires_in.to_string());
            }
            alexa_redirect.set_fragment(Some(&fragment.finish()));
            debug_verdict("token exchanged and sent to Alexa in the fragment");
            verdict(
                AuthorizeVerdict::TokenToAlexa,
                "token exchanged and sent to Alexa in the fragment",
            );
            redirect(&alexa_redirect)
        }
        TokenAnswer::Error { code, description } => {
            debug_verdict("the token exchange was refused; relayed to Alexa");
            verdict(
                AuthorizeVerdict::ErrorToAlexa,
                "the token exchange was refused; relayed to Alexa",
            );
            to_alexa_error(
                GrantMode::Implicit,
                &alexa_redirect,
                alexa_state,
                &code,
                description.as_deref(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::code::s256;
    use super::super::testing::{get, location, query, service, ALEXA};
    use super::*;
    use crate::provider::TokenRequestHook;
    use crate::state::StateSealer;
    use http::header::LOCATION;

    #[tokio::test]
    async fn the_code_handed_to_alexa_opens_at_the_token_endpoint() {
        let s = service(|b| b.client_id("id").pkce(true));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let challenge = &pairs.iter().find(|(n, _)| n == "code_challenge").unwrap().1;
        let back = location(
            &get(
                &s,
                &[("code", "UP"), ("state", sealed_state)],
                "/oauth/callback",
            )
            .await,
        );
        let back = query(&back);
        assert_eq!(back[0], ("state".into(), "S".into()));
        let mut request = crate::TokenRequest::parse(
            &http::HeaderMap::new(),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", &back[1].1)
                .append_pair("redirect_uri", ALEXA)
                .finish()
                .as_bytes(),
        )
        .unwrap();
        s.code_opener().apply(&mut request).unwrap();
        assert_eq!(request.code(), Some("UP"));
        assert_eq!(
            request.redirect_uri(),
            Some("https://bridge.example.com/callback")
        );
        assert_eq!(&s256(request.param("code_verifier").unwrap()), challenge);
    }

    #[tokio::test]
    async fn a_state_is_accepted_once_at_the_callback() {
        let s = service(|b| b.client_id("id"));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let first = get(&s, &[("code", "UP"), ("state", sealed_state)], "/callback").await;
        assert_eq!(location(&first).host_str(), Some("layla.amazon.com"));
        let again = get(&s, &[("code", "UP"), ("state", sealed_state)], "/callback").await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(again.headers().get(LOCATION).is_none());
        let report = again.extensions().get::<AuthorizeReport>().unwrap();
        assert_eq!(report.state, Some(StateVerdict::Replayed));
    }

    #[tokio::test]
    async fn an_upstream_code_too_long_to_seal_is_a_server_error_to_alexa() {
        let s = service(|b| b.client_id("id"));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let long = "c".repeat(3500);
        let back =
            location(&get(&s, &[("code", &long), ("state", sealed_state)], "/callback").await);
        let back = query(&back);
        assert_eq!(back[0], ("error".into(), "server_error".into()));
        assert!(!back.iter().any(|(n, _)| n == "code"));
    }

    #[tokio::test]
    async fn a_state_whose_redirect_is_no_longer_allowed_is_refused_at_the_callback() {
        let sealer = StateSealer::random();
        let before = service(|b| b.sealer(sealer.clone()));
        let upstream = location(
            &get(
                &before,
                &[("state", "S"), ("redirect_uri", ALEXA), ("client_id", "a")],
                "/authorize",
            )
            .await,
        );
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        // The same deployment, now pinned to another skill.
        let after = service(|b| b.sealer(sealer).alexa_vendor_ids(["M2OTHERSKILL00"]));
        let answer = get(
            &after,
            &[("code", "UP"), ("state", sealed_state)],
            "/callback",
        )
        .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert!(answer.headers().get(LOCATION).is_none());
        let report = answer.extensions().get::<AuthorizeReport>().unwrap();
        assert!(report
            .accepted_redirects
            .as_deref()
            .unwrap()
            .contains("/api/skill/link/{M2OTHERSKILL00}"));
    }
}

//! The lifetime of a JWT-format access token, read from its `exp` claim.
//!
//! Salesforce's JWT-based access tokens (and those of many OAuth servers) are JSON Web Tokens
//! (RFC 7519) whose `exp` claim says when they expire, while the answer carries no
//! `expires_in`. The bridge is not the token's audience and checks nothing about it: it only
//! reads the payload (base64url, RFC 7515 §2) to tell Alexa when to refresh. No signature is
//! verified, so a forged `exp` could at worst make Alexa refresh early or late; the upstream
//! still decides whether the token works.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use serde::Deserialize;

use crate::provider::ExpiresIn;

/// base64url with or without padding: RFC 7515 forbids it, but a lenient reading costs nothing.
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Tokens longer than this are not read as JWTs: bounded work on any answer.
const MAX_JWT_LEN: usize = 16 * 1024;

/// The `expires_in` a JWT access token's `exp` gives at `now()` (seconds since the Unix epoch,
/// asked only of a JWT, so that an opaque token costs no clock read):
/// `None` when the token is not a JWT with a numeric `exp` (the caller keeps its default),
/// otherwise the seconds left, never below [`ExpiresIn::ALEXA_MINIMUM_SECS`].
///
/// A token that expires sooner than Alexa's minimum, or has already expired (a clock apart
/// from the upstream's, most likely), is answered with the minimum and a warning: refusing the
/// exchange would fail the link over a lifetime, and Alexa refreshes once it has passed.
pub(super) fn expires_in_from_jwt(token: &str, now: impl FnOnce() -> u64) -> Option<u64> {
    let exp = read_exp(token)?;
    let left = exp.saturating_sub(now());
    if left < ExpiresIn::ALEXA_MINIMUM_SECS {
        tracing::warn!(
            target: "account_link_bridge::token",
            answered = ExpiresIn::ALEXA_MINIMUM_SECS,
            "the access token's JWT exp is less than the 360 s Alexa requires away: answered 360"
        );
        return Some(ExpiresIn::ALEXA_MINIMUM_SECS);
    }
    Some(left)
}

/// The `exp` claim of a compact JWS (`header.payload.signature`), when the header and payload
/// are base64url JSON objects and `exp` is a non-negative number (a NumericDate may have a
/// fraction, RFC 7519 §2; it is cut to whole seconds).
fn read_exp(token: &str) -> Option<u64> {
    if token.len() > MAX_JWT_LEN {
        return None;
    }
    let mut segments = token.split('.');
    let (header, payload, _signature) = (segments.next()?, segments.next()?, segments.next()?);
    if segments.next().is_some() {
        return None;
    }
    #[derive(Deserialize)]
    struct Header {
        #[allow(dead_code)]
        alg: String,
    }
    #[derive(Deserialize)]
    struct Claims {
        exp: serde_json::Number,
    }
    let header = BASE64URL.decode(header).ok()?;
    serde_json::from_slice::<Header>(&header).ok()?;
    let payload = BASE64URL.decode(payload).ok()?;
    let exp = serde_json::from_slice::<Claims>(&payload).ok()?.exp;
    match (exp.as_u64(), exp.as_f64()) {
        (Some(secs), _) => Some(secs),
        (None, Some(f)) if f.is_finite() && f >= 0.0 && f <= u64::MAX as f64 => Some(f as u64),
        _ => None,
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    /// A JWT (unsigned: the bridge never checks the signature) with this payload.
    pub(crate) fn jwt(payload: &str) -> String {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        format!(
            "{}.{}.c2lnbmF0dXJl",
            encode(r#"{"alg":"RS256","typ":"JWT"}"#),
            encode(payload)
        )
    }

    const NOW: u64 = 1_800_000_000;

    #[test]
    fn exp_gives_the_seconds_left() {
        let token = jwt(&format!(r#"{{"sub":"005x0","exp":{}}}"#, NOW + 7200));
        assert_eq!(expires_in_from_jwt(&token, || NOW), Some(7200));
        let fractional = jwt(&format!(r#"{{"exp":{}.75}}"#, NOW + 900));
        assert_eq!(expires_in_from_jwt(&fractional, || NOW), Some(900));
    }

    #[test]
    fn an_exp_closer_than_alexas_minimum_or_past_is_answered_360() {
        for exp in [NOW + 359, NOW + 1, NOW, NOW - 3600, 0] {
            let token = jwt(&format!(r#"{{"exp":{exp}}}"#));
            assert_eq!(expires_in_from_jwt(&token, || NOW), Some(360), "exp {exp}");
        }
        let token = jwt(&format!(r#"{{"exp":{}}}"#, NOW + 360));
        assert_eq!(expires_in_from_jwt(&token, || NOW), Some(360));
    }

    #[test]
    fn tokens_that_are_not_jwts_with_a_numeric_exp_give_nothing() {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
        let header = encode(r#"{"alg":"RS256"}"#);
        for token in [
            "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9".to_string(),
            "a.b.c".to_string(),
            format!("{header}.not base64!.sig"),
            format!("{header}.{}.sig", encode("not json")),
            format!("{header}.{}.sig", encode("[1,2]")),
            jwt(r#"{"sub":"no exp"}"#),
            jwt(r#"{"exp":"1800007200"}"#),
            jwt(r#"{"exp":-5}"#),
            jwt(r#"{"exp":null}"#),
            format!(
                "{}.{}.sig",
                encode("not a header"),
                encode(r#"{"exp":1900000000}"#)
            ),
            format!("{}.x", jwt(r#"{"exp":1900000000}"#)),
            format!("{header}.{}", encode(r#"{"exp":1900000000}"#)),
        ] {
            assert_eq!(expires_in_from_jwt(&token, || NOW), None, "{token}");
        }
    }

    #[test]
    fn padded_base64url_is_read_too() {
        let encode = |s: &str| base64::engine::general_purpose::URL_SAFE.encode(s);
        let token = format!(
            "{}.{}.sig",
            encode(r#"{"alg":"none"}"#),
            encode(&format!(r#"{{"exp":{}}}"#, NOW + 3600))
        );
        assert_eq!(expires_in_from_jwt(&token, || NOW), Some(3600));
    }

    proptest::proptest! {
        #[test]
        fn any_token_is_read_without_panicking(token in ".{0,300}", payload in ".{0,100}") {
            let _ = expires_in_from_jwt(&token, || NOW);
            let _ = expires_in_from_jwt(&jwt(&payload), || NOW);
        }
    }
}

//! What each fuzz target does with its input, and the oracles it checks.
//!
//! The cargo-fuzz targets in `fuzz_targets/` call these functions, and `tests/fuzz_corpus.rs`
//! replays every committed corpus file through the same functions in a plain `cargo test`, so
//! the corpora keep guarding the library where cargo-fuzz is not installed.
//!
//! Every function must never panic on any input; a panic is a finding: either a crash in the
//! library or an oracle that failed.

use account_link_bridge::state::{OpenError, SealedPayload, StateKey, StateSealer};
use account_link_bridge::{
    oauth::ClientAuth, oauth::CredentialSource, pack::PackFormat,
    token_response::RewriteTokenResponseLayer, Provider, TokenRequest,
};
use base64::Engine as _;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Response, StatusCode};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Splits off the bytes up to the first newline (the newline is dropped).
fn take_line(input: &[u8]) -> (&[u8], &[u8]) {
    match input.iter().position(|b| *b == b'\n') {
        Some(i) => (&input[..i], &input[i + 1..]),
        None => (input, &[]),
    }
}

/// The Content-Types a token request may come with; selector 7 reads one from the input.
const REQUEST_CONTENT_TYPES: [Option<&str>; 7] = [
    None,
    Some("application/x-www-form-urlencoded"),
    Some("application/json"),
    Some("application/x-www-form-urlencoded; charset=UTF-8"),
    Some("APPLICATION/JSON;charset=utf-8"),
    Some("text/plain"),
    Some("multipart/form-data; boundary=x"),
];

/// `token_request`: byte 0 selects the Content-Type (bits 0-2; 7 reads it from the next line)
/// and the Authorization header (bits 3-4: none, `Basic base64(next line)`, the next line
/// verbatim); the rest is the body. Oracle: a request that parses is encoded with `to_form`
/// (credentials where Alexa put them) and parses again to the same grant type, parameters and
/// credentials.
pub fn token_request(data: &[u8]) {
    let Some((&selector, mut rest)) = data.split_first() else {
        return;
    };
    let mut headers = HeaderMap::new();
    let content_type = usize::from(selector & 7);
    if let Some(known) = REQUEST_CONTENT_TYPES.get(content_type) {
        if let Some(value) = known {
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
        }
    } else {
        let (line, tail) = take_line(rest);
        rest = tail;
        if let Ok(value) = HeaderValue::from_bytes(line) {
            headers.insert(CONTENT_TYPE, value);
        }
    }
    let authorization = match (selector >> 3) & 3 {
        1 => {
            let (line, tail) = take_line(rest);
            rest = tail;
            let encoded = base64::engine::general_purpose::STANDARD.encode(line);
            HeaderValue::try_from(format!("Basic {encoded}")).ok()
        }
        2 => {
            let (line, tail) = take_line(rest);
            rest = tail;
            HeaderValue::from_bytes(line).ok()
        }
        _ => None,
    };
    if let Some(value) = authorization {
        headers.insert(AUTHORIZATION, value);
    }
    if let Ok(request) = TokenRequest::parse(&headers, rest) {
        check_form_round_trip(&request);
    }
}

/// `to_form` then `parse` gives back the same request.
pub fn check_form_round_trip(request: &TokenRequest) {
    let auth = match request.credential_source() {
        CredentialSource::Basic => ClientAuth::Basic,
        CredentialSource::Body | CredentialSource::None => ClientAuth::Body,
    };
    let (form, authorization) = request.to_form(auth, &[]);
    let mut headers = HeaderMap::new();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    if let Some(authorization) = authorization {
        headers.insert(AUTHORIZATION, authorization);
    }
    let again = match TokenRequest::parse(&headers, &form) {
        Ok(again) => again,
        Err(error) => panic!(
            "the form {:?} encoded from a valid request does not parse again: {error}",
            String::from_utf8_lossy(&form)
        ),
    };
    assert_eq!(again.grant_type(), request.grant_type());
    assert_eq!(
        again.params().collect::<Vec<_>>(),
        request.params().collect::<Vec<_>>()
    );
    assert_eq!(again.client_id(), request.client_id());
    assert_eq!(again.client_secret(), request.client_secret());
    assert_eq!(again.credential_source(), request.credential_source());
}

/// The Content-Types an upstream answer may come with.
const ANSWER_CONTENT_TYPES: [Option<&str>; 9] = [
    None,
    Some("application/json"),
    Some("application/json;charset=UTF-8"),
    Some("application/x-www-form-urlencoded"),
    Some("text/html; charset=utf-8"),
    Some("text/plain"),
    Some("application/problem+json"),
    Some(""),
    Some("application/octet-stream"),
];

/// Upstream codes the presets map to `invalid_grant` or `invalid_client` (GitHub's and
/// Slack's, see `Provider::github` and `Provider::slack`).
const MAPPED_TO_UNLINKING: &[&str] = &[
    "bad_verification_code",
    "bad_refresh_token",
    "redirect_uri_mismatch",
    "incorrect_client_credentials",
    "invalid_code",
    "code_already_used",
    "code_expired",
    "bad_redirect_uri",
    "invalid_refresh_token",
    "token_expired",
    "token_revoked",
    "invalid_client_id",
    "bad_client_secret",
];

/// `rewrite_answer`: bytes 0-1 the upstream status (100..=599), byte 2 the Content-Type,
/// byte 3 the provider preset (bits 0-1) and the token request answered (bits 2-3: none, an
/// authorization code, a refresh); the rest is the body. Oracles: a success is JSON with a
/// non-empty `access_token`, an integer `expires_in` and a `token_type`; an error renders as a
/// 4xx/5xx RFC 6749 answer; `invalid_grant`/`invalid_client` only when the upstream's own
/// `error` said so (or a preset maps the upstream's code to it).
pub fn rewrite_answer(data: &[u8]) {
    let [lo, hi, content_type, selector, body @ ..] = data else {
        return;
    };
    let status = 100 + u16::from_le_bytes([*lo, *hi]) % 500;
    let status = StatusCode::from_u16(status).expect("100..=599 is a status");
    let mut headers = HeaderMap::new();
    if let Some(value) = ANSWER_CONTENT_TYPES[usize::from(*content_type) % 9] {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(value));
    }
    let provider = match selector & 3 {
        0 => Provider::generic(),
        1 => Provider::salesforce(),
        2 => Provider::github(),
        _ => Provider::slack(),
    };
    let request = match (selector >> 2) & 3 {
        1 => Some(&b"grant_type=authorization_code&code=alexas-code&client_id=alexa&client_secret=alexas-secret"[..]),
        2 => Some(&b"grant_type=refresh_token&refresh_token=alexas-refresh-token&client_id=alexa&client_secret=alexas-secret"[..]),
        _ => None,
    }
    .map(|body| TokenRequest::parse(&HeaderMap::new(), body).expect("a valid request"));
    let layer = RewriteTokenResponseLayer::for_provider(&provider);
    let (result, _report) = layer.rewrite_answer(status, &headers, body, request.as_ref());
    check_rewrite(body, request.as_ref(), result);
}

/// The oracles of one rewrite.
pub fn check_rewrite(
    upstream_body: &[u8],
    request: Option<&TokenRequest>,
    result: Result<bytes::Bytes, account_link_bridge::OAuthError>,
) {
    match result {
        Ok(json) => {
            let answer: Value = serde_json::from_slice(&json).expect("a success is JSON");
            let answer = answer.as_object().expect("a success is a JSON object");
            assert!(answer["access_token"]
                .as_str()
                .is_some_and(|t| !t.is_empty()));
            assert!(answer["expires_in"].is_u64());
            assert!(answer["token_type"].as_str().is_some_and(|t| !t.is_empty()));
            if request.and_then(TokenRequest::refresh_token).is_some() {
                assert!(answer["refresh_token"]
                    .as_str()
                    .is_some_and(|t| !t.is_empty()));
            }
        }
        Err(error) => {
            let code = error.code().clone();
            if code.unlinks() {
                let said = upstream_error(upstream_body);
                assert!(
                    said.as_deref() == Some(code.as_str())
                        || said
                            .as_deref()
                            .is_some_and(|s| MAPPED_TO_UNLINKING.contains(&s)),
                    "answered {code} but the upstream's error was {said:?}"
                );
            }
            check_rfc6749_response(error.into_response());
        }
    }
}

/// The `error` the upstream body carries, as JSON or as a form.
fn upstream_error(body: &[u8]) -> Option<String> {
    if let Ok(Value::Object(object)) = serde_json::from_slice::<Value>(body) {
        return object.get("error")?.as_str().map(str::to_owned);
    }
    form_urlencoded::parse(body)
        .find(|(name, _)| name == "error")
        .map(|(_, value)| value.into_owned())
}

/// A 4xx/5xx answer with an RFC 6749 §5.2 JSON body.
pub fn check_rfc6749_response(response: Response<bytes::Bytes>) {
    assert!(
        response.status().is_client_error() || response.status().is_server_error(),
        "an error answered {}",
        response.status()
    );
    assert_eq!(
        response.headers()[CONTENT_TYPE],
        "application/json;charset=UTF-8"
    );
    assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
    let body: Value = serde_json::from_slice(response.body()).expect("an error is JSON");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()));
}

/// The separators the `unpack` target tries: ASCII ones and a 4-byte character.
const SEPARATORS: [char; 6] = [' ', '|', '.', ':', '~', '\u{1f511}'];
const FIELD_NAMES: [&str; 3] = ["instance_url", "id", "scope"];

/// `unpack`: byte 0 selects the separator, byte 1 the number of fields (0-3) and a maximum
/// length (bit 2: the default, or 64 bytes); the rest, as UTF-8, is the packed token.
/// Oracle: whatever unpacks packs again to exactly the same string.
pub fn unpack(data: &[u8]) {
    let [separator, fields, packed @ ..] = data else {
        return;
    };
    let Ok(packed) = std::str::from_utf8(packed) else {
        return;
    };
    let mut format = PackFormat::new().separator(SEPARATORS[usize::from(*separator) % 6]);
    for name in &FIELD_NAMES[..usize::from(fields & 3).min(3)] {
        format = format.field(*name);
    }
    if fields & 4 != 0 {
        format = format.max_len(64);
    }
    check_unpack_inverse(&format, packed);
}

/// `unpack` accepts only what `pack` writes, and `pack` writes it back unchanged.
pub fn check_unpack_inverse(format: &PackFormat, packed: &str) {
    let Ok(token) = format.unpack(packed) else {
        return;
    };
    let repacked = format
        .pack(token.access_token(), |name| token.field(name))
        .unwrap_or_else(|e| panic!("{packed:?} unpacks but does not pack again: {e}"));
    assert_eq!(repacked, packed, "unpack is not the exact inverse of pack");
}

/// The payload the `state_open` target tries to open.
#[derive(Debug, Serialize, Deserialize)]
pub struct Probe {
    /// Any text.
    pub text: String,
}

impl SealedPayload for Probe {
    const PURPOSE: &'static str = "fuzz/probe/v1";
}

/// The key of the `state_open` target's sealer.
pub const FUZZ_KEY: [u8; 32] = *b"fuzz-state-key-0123456789abcdef!";

/// The sealer of the `state_open` target.
pub fn fuzz_sealer() -> StateSealer {
    StateSealer::new([StateKey::from_bytes(FUZZ_KEY)]).expect("one key")
}

/// Genuine seals of `Probe`s under [`FUZZ_KEY`], already expired when they were made (the
/// corpus seeds `corpus/state_open/genuine_expired_*`, sealed outside the crate with the wire
/// format of `src/state.rs`): the only strings that may open as far as `Expired`.
pub const GENUINE_EXPIRED: &[&str] = &[
    "AY9EesgckgpER-WTbmwss4RAoxzefbw_mEqwJ58unv5d5S2o-7WuD2MwfNDqVVAXwLJScHhYmDZJyL5DAz1LxvXymwfpN1M",
    "AYs4QJK7jFZ2zz_o1VM_IxQFwT9rs-HPWS7HniaGNm0fkeLHfyV0kbDnbKH2oUHfPi4_1ccIS2a-sCDv",
    "AXOjV0g9Updbg5w0ei5g-0Tn-hnv5RRHjjWvoy0py_xSY6hW46JaHxDCgAx12TzqCTunEHCfJOBDwiqKIPcrv8W0Bxr19YaaBcA7_Lp1RbtkLcJ8nKQs0SFV9DJsC4deJqofm_As6XwVOnF2NBNHmLWIqNHpYwN0k0Xcs6p1NVrruVHJYhwLk0UK8ZV6cE1dKpcgzA4F0Ljqr2TzfaUPZQ",
];

/// `state_open`: the input, as a string, is opened with a fixed key. Oracle: it never opens
/// (forging a seal must be impossible) and only a genuine seal gets as far as `Expired`.
pub fn state_open(data: &[u8]) {
    let Ok(sealed) = std::str::from_utf8(data) else {
        return;
    };
    match fuzz_sealer().open::<Probe>(sealed) {
        Ok(probe) => panic!("a fuzz input opened as {probe:?}: a forged seal"),
        Err(OpenError::Expired) => assert!(
            GENUINE_EXPIRED.contains(&sealed),
            "a fuzz input passed authentication: a forged seal"
        ),
        Err(_) => {}
    }
}

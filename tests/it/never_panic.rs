//! Never a panic, always a well-formed answer: property tests over hostile input for the token
//! request layer, the answer rewrite, state opening and the authorization middleman.

use crate::oracles;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use account_link_bridge::authorize::{AuthorizeRedirect, ALEXA_REDIRECT_HOSTS};
use account_link_bridge::state::{OpenError, StateKey, StateSealer};
use account_link_bridge::{
    token_request::NormalizeTokenRequestLayer, token_response::RewriteTokenResponseLayer, FullBody,
    Provider, TokenRequest,
};
use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::BodyExt;
use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tower::{service_fn, Layer, ServiceExt};
use url::Url;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a current-thread runtime")
}

/// A header value from arbitrary bytes, when they form one.
fn header_value(bytes: &[u8]) -> Option<HeaderValue> {
    HeaderValue::from_bytes(bytes).ok()
}

fn media_type() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        prop::sample::select(vec![
            "application/x-www-form-urlencoded",
            "application/json",
            "application/json; charset=utf-8",
            "Application/X-WWW-Form-Urlencoded;charset=UTF-8",
            "text/plain",
            "multipart/form-data; boundary=x",
            "application/json, text/plain",
            ";",
            "",
        ])
        .prop_map(|m| Some(m.as_bytes().to_vec())),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(Some),
    ]
}

fn authorization() -> impl Strategy<Value = Option<Vec<u8>>> {
    prop_oneof![
        Just(None),
        prop::collection::vec(any::<u8>(), 0..60).prop_map(Some),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|credentials| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            Some(format!("Basic {encoded}").into_bytes())
        }),
        "[ -~]{0,12}:[ -~]{0,12}".prop_map(|credentials| {
            let encoded = base64::engine::general_purpose::STANDARD.encode(credentials);
            Some(format!("basic  {encoded} ").into_bytes())
        }),
    ]
}

fn content_length() -> impl Strategy<Value = Option<String>> {
    prop_oneof![
        Just(None),
        any::<u64>().prop_map(|n| Some(n.to_string())),
        (0u64..20_000).prop_map(|n| Some(n.to_string())),
        "[ -~]{0,12}".prop_map(Some),
    ]
}

const REQUEST_NAMES: &[&str] = &[
    "grant_type",
    "code",
    "refresh_token",
    "client_id",
    "client_secret",
    "redirect_uri",
    "code_verifier",
    "scope",
    "",
];

fn request_body() -> impl Strategy<Value = Vec<u8>> {
    let value = prop_oneof![
        Just("authorization_code".to_owned()),
        Just("refresh_token".to_owned()),
        "[ -~]{0,16}",
        "\\PC{0,8}",
        Just(String::new()),
    ];
    let pairs = prop::collection::vec((prop::sample::select(REQUEST_NAMES), value), 0..8);
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        pairs.clone().prop_map(|pairs| {
            form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        }),
        pairs.prop_map(|pairs| {
            let fields: Vec<String> = pairs
                .iter()
                .map(|(n, v)| format!("{}:{}", json!(n), json!(v)))
                .collect();
            format!("{{{}}}", fields.join(",")).into_bytes()
        }),
    ]
}

/// The inner service's canned answer, and whether it was called.
fn recording_upstream() -> (
    Arc<AtomicBool>,
    impl tower::Service<Request<FullBody>, Response = Response<FullBody>, Error = Infallible> + Clone,
) {
    let called = Arc::new(AtomicBool::new(false));
    let seen = called.clone();
    let service = service_fn(move |_request: Request<FullBody>| {
        seen.store(true, Ordering::SeqCst);
        async { Ok::<_, Infallible>(Response::new(FullBody::from("{\"canned\":true}"))) }
    });
    (called, service)
}

/// A refusal the token endpoint answers itself: RFC 6749 JSON.
fn check_rfc6749(status: StatusCode, headers: &HeaderMap, body: &[u8]) {
    let mut response = Response::new(Bytes::copy_from_slice(body));
    *response.status_mut() = status;
    *response.headers_mut() = headers.clone();
    oracles::check_rfc6749_response(response);
}

proptest! {
    #[test]
    fn the_token_request_layer_never_panics_and_calls_upstream_only_for_valid_requests(
        media in media_type(),
        auth in authorization(),
        length in content_length(),
        body in request_body(),
    ) {
        let mut headers = HeaderMap::new();
        if let Some(value) = media.as_deref().and_then(header_value) {
            headers.insert(CONTENT_TYPE, value);
        }
        if let Some(value) = auth.as_deref().and_then(header_value) {
            headers.insert(AUTHORIZATION, value);
        }
        if let Some(value) = length.as_deref().and_then(|l| header_value(l.as_bytes())) {
            headers.insert(CONTENT_LENGTH, value);
        }
        let declared_too_large = headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n > 16 * 1024);
        let valid = !declared_too_large && TokenRequest::parse(&headers, &body).is_ok();

        let (called, upstream) = recording_upstream();
        let service = NormalizeTokenRequestLayer::new().layer(upstream);
        let mut request = Request::post("/token").body(FullBody::new(Bytes::from(body))).unwrap();
        *request.headers_mut() = headers;
        let (status, headers, body) = runtime().block_on(async {
            let response = service.oneshot(request).await.unwrap();
            let (parts, body) = response.into_parts();
            (parts.status, parts.headers, body.collect().await.unwrap().to_bytes())
        });
        prop_assert_eq!(called.load(Ordering::SeqCst), valid);
        if valid {
            prop_assert_eq!(status, StatusCode::OK);
            prop_assert_eq!(&body[..], b"{\"canned\":true}");
        } else {
            check_rfc6749(status, &headers, &body);
        }
    }
}

const ANSWER_KEYS: &[&str] = &[
    "access_token",
    "expires_in",
    "error",
    "ok",
    "refresh_token",
    "instance_url",
];

/// `invalid_grant` or `invalid_client` with one character inserted that RFC 6749 does not
/// allow in a code: what a broken upstream might send.
fn junk_unlinking_code() -> impl Strategy<Value = String> {
    (
        prop::sample::select(vec!["invalid_grant", "invalid_client"]),
        prop::sample::select(vec!['"', '\\', '\n', '\u{7f}', 'é', '\u{0}']),
        0usize..14,
    )
        .prop_map(|(code, junk, at)| {
            let at = at.min(code.len());
            format!("{}{junk}{}", &code[..at], &code[at..])
        })
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[ -~]{0,16}".prop_map(Value::from),
        prop::sample::select(vec![
            "",
            "3600",
            " 42 ",
            "-1",
            "1e3",
            "invalid_grant",
            "invalid_client",
            "server_error",
            "Bearer",
            "https://na1.salesforce.com",
            "has space",
            "tok",
        ])
        .prop_map(Value::from),
        junk_unlinking_code().prop_map(Value::from),
    ];
    leaf.prop_recursive(2, 8, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(Value::from),
            prop::collection::vec((prop::sample::select(ANSWER_KEYS), inner), 0..3).prop_map(
                |pairs| Value::Object(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
            ),
        ]
    })
}

fn answer_body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        prop::collection::vec((prop::sample::select(ANSWER_KEYS), json_value()), 0..7).prop_map(
            |pairs| {
                let object: Map<String, Value> =
                    pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
                serde_json::to_vec(&object).unwrap()
            }
        ),
        prop::collection::vec((prop::sample::select(ANSWER_KEYS), "[ -~]{0,12}"), 0..5).prop_map(
            |pairs| form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
                .into_bytes()
        ),
    ]
}

fn provider(index: u8) -> Provider {
    match index % 4 {
        0 => Provider::generic(),
        1 => Provider::salesforce(),
        2 => Provider::github(),
        _ => Provider::slack(),
    }
}

fn token_request(index: u8) -> Option<TokenRequest> {
    let body: &[u8] = match index % 3 {
        0 => return None,
        1 => b"grant_type=authorization_code&code=alexas-code&client_id=alexa&client_secret=alexas-secret",
        _ => b"grant_type=refresh_token&refresh_token=alexas-refresh-token&client_id=alexa",
    };
    Some(TokenRequest::parse(&HeaderMap::new(), body).unwrap())
}

proptest! {
    #[test]
    fn the_rewrite_never_panics_and_unlinks_only_when_the_upstream_said_so(
        status in 100u16..=599,
        media in media_type(),
        body in answer_body(),
        provider_index in any::<u8>(),
        request_index in any::<u8>(),
    ) {
        let mut headers = HeaderMap::new();
        if let Some(value) = media.as_deref().and_then(header_value) {
            headers.insert(CONTENT_TYPE, value);
        }
        let request = token_request(request_index);
        let layer = RewriteTokenResponseLayer::for_provider(&provider(provider_index));
        let (result, _) = layer.rewrite_answer(
            StatusCode::from_u16(status).unwrap(),
            &headers,
            &body,
            request.as_ref(),
        );
        oracles::check_rewrite(&body, request.as_ref(), result);
    }
}

proptest! {
    #[test]
    fn a_junk_code_near_an_unlinking_one_never_unlinks(
        status in prop::sample::select(vec![200u16, 400, 401]),
        code in junk_unlinking_code(),
        provider_index in any::<u8>(),
    ) {
        let body = serde_json::to_vec(&json!({"error": code, "ok": false})).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let layer = RewriteTokenResponseLayer::for_provider(&provider(provider_index));
        let (result, _) =
            layer.rewrite_answer(StatusCode::from_u16(status).unwrap(), &headers, &body, None);
        oracles::check_rewrite(&body, None, result);
    }
}

fn sealer() -> StateSealer {
    StateSealer::new([StateKey::from_bytes([42; 32])]).unwrap()
}

fn check_refused(result: Result<oracles::Probe, OpenError>) -> Result<(), TestCaseError> {
    match result {
        Ok(probe) => Err(TestCaseError::fail(format!("opened as {probe:?}"))),
        Err(OpenError::Expired) => Err(TestCaseError::fail("passed authentication")),
        Err(_) => Ok(()),
    }
}

proptest! {
    #[test]
    fn opening_arbitrary_strings_never_panics_nor_succeeds(
        sealed in prop_oneof![".{0,300}", "[A-Za-z0-9_-]{0,200}", "AQ[A-Za-z0-9_-]{54,120}"],
    ) {
        check_refused(sealer().open::<oracles::Probe>(&sealed))?;
    }

    #[test]
    fn a_sealed_string_with_one_byte_changed_never_opens(
        text in "[ -~]{0,40}",
        at in any::<prop::sample::Index>(),
        byte in 0u8..128,
        truncate in any::<bool>(),
    ) {
        let sealer = sealer();
        let sealed = sealer.seal(&oracles::Probe { text });
        let mut bytes = sealed.clone().into_bytes();
        let at = at.index(bytes.len());
        if truncate {
            bytes.truncate(at);
        } else {
            prop_assume!(bytes[at] != byte);
            bytes[at] = byte;
        }
        let mutated = String::from_utf8(bytes).unwrap();
        check_refused(sealer.open::<oracles::Probe>(&mutated))?;
        prop_assert!(sealer.open::<oracles::Probe>(&sealed).is_ok());
    }
}

const UPSTREAM_HOST: &str = "login.salesforce.com";

fn middleman(pkce: bool) -> AuthorizeRedirect {
    AuthorizeRedirect::builder()
        .upstream_authorize_url(format!("https://{UPSTREAM_HOST}/services/oauth2/authorize"))
        .client_id("3MVG9-connected-app")
        .public_url("https://bridge.example.com")
        .sealer(sealer())
        .pkce(pkce)
        .build()
        .unwrap()
}

const QUERY_NAMES: &[&str] = &[
    "state",
    "redirect_uri",
    "response_type",
    "client_id",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "code",
    "error",
    "error_description",
];

fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}",
        "[ -~]{0,20}",
        prop::sample::select(vec![
            "https://pitangui.amazon.com/api/skill/link/M2AAAA",
            "https://layla.amazon.com/api/skill/link/M2AAAA",
            "https://alexa.amazon.co.jp/api/skill/link/M2AAAA",
            "https://pitangui.amazon.com.evil.example/api/skill/link/M2AAAA",
            "https://evil.example/api/skill/link/M2AAAA",
            "https://pitangui.amazon.com@evil.example/api/skill/link/M2AAAA",
            "https:\\\\evil.example",
            "//evil.example",
            "https://pitangui.amazon.com:8443/api/skill/link/M2AAAA",
            "code",
            "token",
            "invalid_grant",
        ])
        .prop_map(str::to_owned),
    ]
}

fn query() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec((prop::sample::select(QUERY_NAMES), query_value()), 0..7).prop_map(
            |pairs| form_urlencoded::Serializer::new(String::new())
                .extend_pairs(pairs)
                .finish()
        ),
        "[!-~]{0,80}",
    ]
}

/// A 302 to an Alexa host or the upstream, or a 400 page without a Location.
fn check_browser_answer(response: &Response<FullBody>) -> Result<(), TestCaseError> {
    match response.status() {
        StatusCode::FOUND => {
            let location = response.headers()[LOCATION].to_str().unwrap();
            let url = Url::parse(location).unwrap();
            let host = url.host_str().unwrap_or("");
            prop_assert!(
                ALEXA_REDIRECT_HOSTS.contains(&host) || host == UPSTREAM_HOST,
                "redirected to {}",
                location
            );
            prop_assert_eq!(url.scheme(), "https");
            prop_assert_eq!(&response.headers()[CACHE_CONTROL], "no-store");
        }
        StatusCode::BAD_REQUEST => {
            prop_assert!(response.headers().get(LOCATION).is_none());
            prop_assert!(response.headers()[CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"));
        }
        other => prop_assert!(false, "answered {}", other),
    }
    Ok(())
}

fn get(service: &AuthorizeRedirect, path_and_query: &str) -> Option<Response<FullBody>> {
    let request = Request::get(path_and_query)
        .body(FullBody::default())
        .ok()?;
    Some(
        runtime()
            .block_on(service.clone().oneshot(request))
            .unwrap(),
    )
}

/// A genuine sealed state, from a valid `/authorize`.
fn genuine_state(service: &AuthorizeRedirect) -> String {
    let response = get(
        service,
        "/authorize?state=alexa-state&response_type=code&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAA",
    )
    .unwrap();
    let location = Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap();
    let state = location
        .query_pairs()
        .find(|(n, _)| n == "state")
        .unwrap()
        .1;
    state.into_owned()
}

proptest! {
    #[test]
    fn authorize_answers_arbitrary_queries_with_a_safe_redirect_or_a_page(
        query in query(),
        pkce in any::<bool>(),
    ) {
        let service = middleman(pkce);
        if let Some(response) = get(&service, &format!("/authorize?{query}")) {
            check_browser_answer(&response)?;
        }
    }

    #[test]
    fn callback_answers_arbitrary_queries_with_a_safe_redirect_or_a_page(
        query in query(),
        with_genuine_state in any::<bool>(),
        pkce in any::<bool>(),
    ) {
        let service = middleman(pkce);
        let query = if with_genuine_state {
            format!("state={}&{query}", genuine_state(&service))
        } else {
            query
        };
        if let Some(response) = get(&service, &format!("/callback?{query}")) {
            check_browser_answer(&response)?;
        }
    }
}

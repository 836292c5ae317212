//! The bad-input corpus: hostile and malformed requests against the running bridge over
//! loopback. Each gets the right 4xx with an RFC 6749 JSON error (a 400 page and no redirect on
//! the browser routes), nothing reaches the upstream, and the bridge keeps serving.

use testkit as support;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use account_link_bridge_server::Bridge;
use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use support::{basic, FakeUpstream};

/// What a case must get back.
#[derive(Clone, Copy, Debug)]
enum Expect {
    /// An RFC 6749 JSON error with this status and code.
    Json(u16, &'static str),
    /// A 400 HTML page and no `Location`.
    Page,
}

struct Case {
    name: &'static str,
    method: Method,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    expect: Expect,
}

fn token(
    name: &'static str,
    headers: &[(&'static str, &str)],
    body: impl Into<Vec<u8>>,
    expect: Expect,
) -> Case {
    Case {
        name,
        method: Method::POST,
        path: "/token".into(),
        headers: headers.iter().map(|(n, v)| (*n, v.to_string())).collect(),
        body: body.into(),
        expect,
    }
}

fn browser(name: &'static str, path: impl Into<String>) -> Case {
    Case {
        name,
        method: Method::GET,
        path: path.into(),
        headers: vec![],
        body: vec![],
        expect: Expect::Page,
    }
}

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");
const JSON: (&str, &str) = ("content-type", "application/json");
const BAD_REQUEST: Expect = Expect::Json(400, "invalid_request");
const BAD_CLIENT: Expect = Expect::Json(401, "invalid_client");
const BAD_GRANT_TYPE: Expect = Expect::Json(400, "unsupported_grant_type");
const ALEXA: &str = "https%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA";

fn corpus(sealed_state: &str) -> Vec<Case> {
    let ok_auth = basic("alexa", "s");
    let deep = format!("{}{}", "{\"a\":".repeat(200), "}".repeat(200));
    let tampered = support::tamper(sealed_state);
    vec![
        // Malformed body shapes.
        token("empty body", &[FORM], "", BAD_REQUEST),
        token("empty body, no content type", &[], "", BAD_REQUEST),
        token("truncated JSON", &[JSON], r#"{"grant_type":"authorization_code","code":"a"#, BAD_REQUEST),
        token("truncated JSON sniffed", &[], r#"{"grant_type":"authorization_code""#, BAD_REQUEST),
        token("JSON array", &[JSON], r#"["grant_type","authorization_code"]"#, BAD_REQUEST),
        token("JSON string", &[JSON], r#""grant_type=authorization_code""#, BAD_REQUEST),
        token("JSON null", &[JSON], "null", BAD_REQUEST),
        token("JSON number value", &[], r#"{"grant_type":"authorization_code","code":42}"#, BAD_REQUEST),
        token("JSON boolean value", &[], r#"{"grant_type":"authorization_code","code":true}"#, BAD_REQUEST),
        token("JSON null value", &[], r#"{"grant_type":"authorization_code","code":null}"#, BAD_REQUEST),
        token("JSON array value", &[], r#"{"grant_type":"authorization_code","code":["a","b"]}"#, BAD_REQUEST),
        token("JSON object value", &[], r#"{"grant_type":{"x":1},"code":"a"}"#, BAD_REQUEST),
        token("deeply nested JSON", &[JSON], deep.clone(), BAD_REQUEST),
        token("JSON with trailing data", &[JSON], r#"{"grant_type":"refresh_token","refresh_token":"r"} x"#, BAD_REQUEST),
        token("JSON duplicate keys", &[], r#"{"grant_type":"refresh_token","refresh_token":"a","refresh_token":"b"}"#, BAD_REQUEST),
        token("JSON invalid UTF-8", &[JSON], b"{\"grant_type\":\"refresh_token\",\"refresh_token\":\"\xff\"}".to_vec(), BAD_REQUEST),
        token("form invalid UTF-8", &[FORM], b"grant_type=refresh_token&refresh_token=\xc3\x28".to_vec(), BAD_REQUEST),
        token("form encoded invalid UTF-8", &[FORM], "grant_type=refresh_token&refresh_token=%C3%28", BAD_REQUEST),
        token("form bad percent escape", &[FORM], "grant_type=refresh_token&refresh_token=%G1", BAD_REQUEST),
        token("form truncated percent escape", &[FORM], "grant_type=refresh_token&refresh_token=abc%2", BAD_REQUEST),
        token("form NUL byte", &[FORM], "grant_type=authorization_code&code=a%00b", BAD_REQUEST),
        token("raw NUL byte", &[FORM], b"grant_type=authorization_code&code=a\x00b".to_vec(), BAD_REQUEST),
        token("newline in code", &[FORM], "grant_type=authorization_code&code=a%0D%0AHost:%20evil", BAD_REQUEST),
        token("non-ASCII code", &[FORM], "grant_type=authorization_code&code=%E2%9C%93", BAD_REQUEST),
        token("parameter without name", &[FORM], "=x&grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        token("duplicate grant_type", &[FORM], "grant_type=refresh_token&grant_type=authorization_code&refresh_token=r&code=c", BAD_REQUEST),
        token("duplicate code", &[FORM], "grant_type=authorization_code&code=a&code=b", BAD_REQUEST),
        token("duplicate client_secret", &[FORM], "grant_type=refresh_token&refresh_token=r&client_secret=a&client_secret=b", BAD_REQUEST),
        token("too many parameters", &[FORM], (0..100).map(|i| format!("p{i}=v")).collect::<Vec<_>>().join("&") + "&grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        // Missing or wrong grant parameters.
        token("no grant_type", &[FORM], "code=abc", BAD_REQUEST),
        token("empty grant_type", &[FORM], "grant_type=&code=abc", BAD_REQUEST),
        token("password grant", &[FORM], "grant_type=password&username=u&password=p", BAD_GRANT_TYPE),
        token("client_credentials grant", &[FORM], "grant_type=client_credentials", BAD_GRANT_TYPE),
        token("implicit as grant", &[FORM], "grant_type=implicit", BAD_GRANT_TYPE),
        token("code grant without code", &[FORM], "grant_type=authorization_code&redirect_uri=x", BAD_REQUEST),
        token("code grant with empty code", &[FORM], "grant_type=authorization_code&code=", BAD_REQUEST),
        token("refresh without token", &[FORM], "grant_type=refresh_token", BAD_REQUEST),
        // Wrong media types.
        token("XML", &[("content-type", "application/xml")], "<grant_type>authorization_code</grant_type>", BAD_REQUEST),
        token("multipart", &[("content-type", "multipart/form-data; boundary=x")], "--x\r\nContent-Disposition: form-data; name=\"grant_type\"\r\n\r\nrefresh_token\r\n--x--", BAD_REQUEST),
        token("text/plain", &[("content-type", "text/plain")], "grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        token("two content types", &[FORM, JSON], "grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        token("garbage content type", &[("content-type", ";;;")], "grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        // Header abuse: credentials.
        token("Basic not base64", &[FORM, ("authorization", "Basic %%%")], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Basic without colon", &[FORM, ("authorization", "Basic YWxleGE=")], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Basic empty", &[FORM, ("authorization", "Basic ")], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Basic empty id", &[FORM, ("authorization", &basic("", "s"))], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Basic bad escape", &[FORM, ("authorization", &basic("a%zz", "s"))], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Basic non-UTF-8", &[FORM, ("authorization", "Basic /w==")], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("Bearer instead of Basic", &[FORM, ("authorization", "Bearer abc")], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("huge garbage Authorization", &[FORM, ("authorization", &format!("Basic {}", "A".repeat(8000)))], "grant_type=refresh_token&refresh_token=r", BAD_CLIENT),
        token("credentials in Basic and body", &[FORM, ("authorization", &ok_auth)], "grant_type=refresh_token&refresh_token=r&client_secret=s", BAD_REQUEST),
        token("conflicting client ids", &[FORM, ("authorization", &ok_auth)], "grant_type=refresh_token&refresh_token=r&client_id=mallory", BAD_REQUEST),
        token("two Authorization headers", &[FORM, ("authorization", &ok_auth), ("authorization", &ok_auth)], "grant_type=refresh_token&refresh_token=r", BAD_REQUEST),
        // Oversized bodies.
        token("body over 16 KiB", &[FORM], format!("grant_type=authorization_code&code={}", "a".repeat(20_000)), Expect::Json(413, "invalid_request")),
        token("declared length over the limit", &[FORM, ("content-length", "99999999")], "grant_type=refresh_token&refresh_token=r", Expect::Json(413, "invalid_request")),
        // Forged sealed codes.
        token("forged sealed code", &[FORM], "grant_type=authorization_code&code=alb1.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", Expect::Json(400, "invalid_grant")),
        token("state replayed as a code", &[FORM], format!("grant_type=authorization_code&code=alb1.{sealed_state}"), Expect::Json(400, "invalid_grant")),
        // The browser routes: open redirects.
        browser("authorize without redirect_uri", "/authorize?state=s&response_type=code"),
        browser("authorize to another host", "/authorize?state=s&redirect_uri=https%3A%2F%2Fevil.example%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize to a look-alike suffix", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com.evil.example%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize to a look-alike prefix", "/authorize?state=s&redirect_uri=https%3A%2F%2Fevilpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize with userinfo", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%40evil.example%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize over http", "/authorize?state=s&redirect_uri=http%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize scheme-relative", "/authorize?state=s&redirect_uri=%2F%2Fevil.example%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize javascript", "/authorize?state=s&redirect_uri=javascript%3Aalert(1)"),
        browser("authorize backslash", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2F%5Cevil.example"),
        browser("authorize encoded slash in path", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2F..%252f..%252fevil"),
        browser("authorize wrong path", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2Fevil"),
        browser("authorize with a port", "/authorize?state=s&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%3A8443%2Fapi%2Fskill%2Flink%2FM2"),
        browser("authorize two redirect_uris", format!("/authorize?state=s&redirect_uri={ALEXA}&redirect_uri=https%3A%2F%2Fevil.example%2F")),
        browser("authorize without state", format!("/authorize?response_type=code&redirect_uri={ALEXA}")),
        browser("authorize with a huge state", format!("/authorize?state={}&redirect_uri={ALEXA}", "s".repeat(3000))),
        // The browser routes: state tampering.
        browser("callback without state", "/callback?code=c"),
        browser("callback with a garbage state", "/callback?code=c&state=garbage"),
        browser("callback with a tampered state", format!("/callback?code=c&state={tampered}")),
        browser("callback with an oversized state", format!("/callback?code=c&state={}", "A".repeat(5000))),
        browser("callback with a state of another bridge", format!("/callback?code=c&state={}", StateSealer::random().seal_for(&NotAState, std::time::Duration::from_secs(60)))),
    ]
}

/// A payload sealed by another bridge, to forge a state with a valid shape.
#[derive(serde::Serialize, serde::Deserialize)]
struct NotAState;

impl account_link_bridge::state::SealedPayload for NotAState {
    const PURPOSE: &'static str = "account-link-bridge/authorize-state/v1";
}

async fn send(base: &str, case: &Case) -> support::Reply {
    let mut builder = Request::builder()
        .method(case.method.clone())
        .uri(format!("{base}{}", case.path));
    for (name, value) in &case.headers {
        builder = builder.header(*name, value.as_str());
    }
    support::send(
        builder
            .body(Full::new(Bytes::from(case.body.clone())))
            .unwrap(),
    )
    .await
}

#[tokio::test]
async fn every_bad_input_is_answered_and_nothing_reaches_the_upstream() {
    let upstream = FakeUpstream::salesforce().await;
    let sealer = StateSealer::random();
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(format!("http://{}/authorize", upstream.addr))
        .public_url("https://bridge.example.com")
        .sealer(sealer)
        .build()
        .unwrap();
    let bridge = Bridge::with_authorize(
        Provider::salesforce(),
        Upstream::new(upstream.token_url().parse().unwrap()),
        authorize,
    );
    let base = support::serve_service(bridge).await;

    // A genuine sealed state, to tamper with and to replay.
    let start = support::send(
        Request::get(format!(
            "{base}/authorize?state=alexa&response_type=code&redirect_uri={ALEXA}"
        ))
        .body(Full::default())
        .unwrap(),
    )
    .await;
    assert_eq!(start.status, 302);
    let location = start.header("location").unwrap().to_string();
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(location.split_once('?').unwrap().1).unwrap();
    let state = query.iter().find(|(n, _)| n == "state").unwrap().1.clone();

    let corpus = corpus(&state);
    assert!(corpus.len() >= 60, "{} cases", corpus.len());
    for case in &corpus {
        let reply = send(&base, case).await;
        match case.expect {
            Expect::Json(status, code) => {
                assert_eq!(reply.status, status, "{}: {:?}", case.name, reply.body);
                assert_eq!(reply.oauth_error(), code, "{}", case.name);
                assert!(
                    reply.json()["error_description"].is_string(),
                    "{}",
                    case.name
                );
            }
            Expect::Page => {
                assert_eq!(reply.status, 400, "{}: {:?}", case.name, reply.body);
                assert!(
                    reply.header("location").is_none(),
                    "{} redirected",
                    case.name
                );
                assert!(
                    reply
                        .header("content-type")
                        .unwrap()
                        .starts_with("text/html"),
                    "{}",
                    case.name
                );
            }
        }
    }
    assert!(
        upstream.seen().is_empty(),
        "the upstream saw {:?}",
        upstream.seen()
    );

    // Still serving: a genuine exchange goes through.
    let ok = support::post(
        &format!("{base}/token"),
        &[FORM],
        "grant_type=refresh_token&refresh_token=r&client_id=alexa&client_secret=s",
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn headers_too_large_for_the_server_are_refused_before_any_work() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = Bridge::new(
        Provider::salesforce(),
        Upstream::new(upstream.token_url().parse().unwrap()),
    );
    let base = support::serve_service(bridge).await;
    let request = Request::post(format!("{base}/token"))
        .header("x-padding", "p".repeat(1024 * 1024))
        .body(Full::new(Bytes::from_static(
            b"grant_type=refresh_token&refresh_token=r",
        )))
        .unwrap();
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http();
    // hyper refuses the head itself (431, or closes the connection): either way no exchange.
    if let Ok(response) = client.request(request).await {
        assert_eq!(response.status(), 431);
    }
    assert!(upstream.seen().is_empty());
}

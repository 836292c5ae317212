//! Request verification for web-service skills, over loopback: a test PKI shaped like Amazon's,
//! its chains served by a loopback stand-in for `s3.amazonaws.com` (fetched with the library's
//! own `HttpCertificateFetcher`), and a skill served by axum behind the layer, called over HTTP.
#![cfg(feature = "verify")]

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use account_link_bridge::skill::verify::{
    AlexaRequestVerifier, CertificateFetcher, FetchError, FetchFuture, FixedChainFetcher,
    HttpCertificateFetcher, Rule, VerifiedAlexaRequest, VerifyAlexaRequestLayer,
};
use axum::{body::Bytes, routing::post, Extension, Json, Router};
use http::Uri;
use serde_json::{json, Value};
use testkit::{AlexaSigningPki, Answer, FakeUpstream, Reply};
use time::format_description::well_known::Rfc3339;

const SKILL_ID: &str = "amzn1.ask.skill.12345678-abcd-1234-abcd-123456789012";
const CHAIN_URL: &str = "https://s3.amazonaws.com/echo.api/echo-api-cert.pem";
const TOKEN: &str = "00Dx0!AR8AQ https://na1.salesforce.com";

/// Stands for `s3.amazonaws.com`: maps Amazon's URL to the loopback server, then fetches it
/// with the library's default fetcher (real HTTP).
struct LoopbackS3 {
    addr: SocketAddr,
    http: HttpCertificateFetcher,
}

impl CertificateFetcher for LoopbackS3 {
    fn fetch<'a>(&'a self, url: &'a Uri) -> FetchFuture<'a> {
        Box::pin(async move {
            if url.host() != Some("s3.amazonaws.com") {
                return Err(FetchError::Refused(format!("not an S3 URL: {url}")));
            }
            let path = url.path_and_query().map_or("/", |p| p.as_str());
            let loopback: Uri = format!("http://{}{path}", self.addr).parse().unwrap();
            self.http.fetch(&loopback).await
        })
    }
}

/// The loopback S3: each path serves one chain (or fault) of the test PKI.
async fn start_s3(pki: &AlexaSigningPki) -> FakeUpstream {
    let stranger = AlexaSigningPki::new();
    let chains = Arc::new(vec![
        ("/echo.api/echo-api-cert.pem", pki.chain_pem()),
        (
            "/echo.api/expired.pem",
            pki.chain_pem_with(&["echo-api.amazon.com"], true),
        ),
        (
            "/echo.api/wrong-name.pem",
            pki.chain_pem_with(&["echo-api.amazon.com.example", "example.com"], false),
        ),
        (
            "/echo.api/wildcard.pem",
            pki.chain_pem_with(&["*.amazon.com"], false),
        ),
        ("/echo.api/untrusted.pem", stranger.chain_pem()),
        ("/echo.api/not-pem.pem", "hello".to_string()),
    ]);
    FakeUpstream::start(move |seen| {
        let pem = |body: &str| Answer {
            status: 200,
            content_type: "application/x-pem-file",
            body: body.to_string(),
        };
        match chains.iter().find(|(path, _)| *path == seen.path) {
            Some((_, chain)) => pem(chain),
            None if seen.path == "/echo.api/unavailable.pem" => Answer::json(503, "{}"),
            None => Answer::json(404, "{}"),
        }
    })
    .await
}

/// A skill behind the layer, and the bodies its handler received.
struct Skill {
    base: String,
    s3: FakeUpstream,
    reached: Arc<Mutex<Vec<Bytes>>>,
}

impl Skill {
    async fn start(pki: &AlexaSigningPki) -> Skill {
        Skill::start_with(pki, |verifier| verifier.skill_ids([SKILL_ID])).await
    }

    async fn start_with(
        pki: &AlexaSigningPki,
        configure: impl FnOnce(AlexaRequestVerifier) -> AlexaRequestVerifier,
    ) -> Skill {
        let s3 = start_s3(pki).await;
        let verifier = AlexaRequestVerifier::new()
            .root_certificates_pem(pki.root_pem.as_bytes())
            .unwrap()
            .fetcher(LoopbackS3 {
                addr: s3.addr,
                http: HttpCertificateFetcher::new(),
            });
        let reached = Arc::new(Mutex::new(Vec::new()));
        let recorded = Arc::clone(&reached);
        let handler = move |Extension(verified): Extension<VerifiedAlexaRequest>, body: Bytes| {
            let recorded = Arc::clone(&recorded);
            async move {
                recorded.lock().unwrap().push(body);
                Json(json!({
                    "applicationId": verified.application_id(),
                    "requestType": verified.envelope().request_type(),
                }))
            }
        };
        let app = Router::new().route("/skill", post(handler));
        #[cfg(feature = "axum")]
        let app = app.route("/linked", post(linked_account));
        let app = app.layer(VerifyAlexaRequestLayer::new(configure(verifier)));
        let addr = testkit::serve_axum(app).await;
        Skill {
            base: format!("http://{addr}"),
            s3,
            reached,
        }
    }

    fn reached(&self) -> Vec<Bytes> {
        self.reached.lock().unwrap().clone()
    }

    fn fetches(&self, path: &str) -> usize {
        self.s3.seen().iter().filter(|s| s.path == path).count()
    }
}

#[cfg(feature = "axum")]
async fn linked_account(account: account_link_bridge::skill::LinkedAccount) -> Json<Value> {
    Json(json!({
        "accessToken": account.access_token(),
        "instanceUrl": account.instance_url(),
    }))
}

/// A LaunchRequest for `skill_id`, stamped `offset_secs` from now.
fn launch_request(skill_id: &str, offset_secs: i64) -> String {
    let timestamp = (time::OffsetDateTime::now_utc() + time::Duration::seconds(offset_secs))
        .format(&Rfc3339)
        .unwrap();
    let user = json!({"userId": "amzn1.ask.account.A", "accessToken": TOKEN});
    json!({
        "version": "1.0",
        "session": {
            "new": true,
            "sessionId": "amzn1.echo-api.session.1",
            "application": {"applicationId": skill_id},
            "user": user.clone(),
        },
        "context": {"System": {"application": {"applicationId": skill_id}, "user": user}},
        "request": {
            "type": "LaunchRequest",
            "requestId": "amzn1.echo-api.request.1",
            "timestamp": timestamp,
            "locale": "en-US",
        },
    })
    .to_string()
}

/// A request as Alexa sends it: signed, with the chain URL; each part can be broken.
#[derive(Clone)]
struct Call {
    chain_url: Option<String>,
    signature: Option<String>,
    body: String,
}

impl Call {
    fn signed(body: String) -> Call {
        Call {
            chain_url: Some(CHAIN_URL.to_string()),
            signature: Some(AlexaSigningPki::sign(body.as_bytes())),
            body,
        }
    }

    fn valid() -> Call {
        Call::signed(launch_request(SKILL_ID, 0))
    }

    fn chain_url(mut self, url: &str) -> Call {
        self.chain_url = Some(url.to_string());
        self
    }

    async fn send(&self, skill: &Skill, route: &str) -> Reply {
        let mut headers = vec![("content-type", "application/json")];
        if let Some(url) = &self.chain_url {
            headers.push(("SignatureCertChainUrl", url));
        }
        if let Some(signature) = &self.signature {
            headers.push(("Signature-256", signature));
        }
        testkit::post(
            &format!("{}{route}", skill.base),
            &headers,
            self.body.clone(),
        )
        .await
    }
}

fn assert_refused(reply: &Reply, rule: &str, case: &str) {
    assert_eq!(reply.status, 400, "{case}: {:?}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["error"], "alexa_request_not_verified", "{case}");
    assert_eq!(answer["rule"], rule, "{case}: {answer}");
    assert!(answer["message"].is_string(), "{case}: {answer}");
}

#[tokio::test]
async fn a_request_signed_by_alexa_reaches_the_skill_with_the_identical_body() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;
    let call = Call::valid();

    let reply = call.send(&skill, "/skill").await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"applicationId": SKILL_ID, "requestType": "LaunchRequest"})
    );
    assert_eq!(skill.reached(), vec![Bytes::from(call.body)]);
}

#[tokio::test]
async fn each_broken_rule_is_refused_400_naming_the_rule_and_never_reaches_the_skill() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;
    let valid = Call::valid();
    let with_body = |body: String| Call {
        body,
        ..valid.clone()
    };
    let cases: Vec<(&str, Call, &str)> = vec![
        (
            "http scheme",
            valid
                .clone()
                .chain_url("http://s3.amazonaws.com/echo.api/echo-api-cert.pem"),
            "cert_chain_url_scheme",
        ),
        (
            "another host",
            valid
                .clone()
                .chain_url("https://notamazon.com/echo.api/echo-api-cert.pem"),
            "cert_chain_url_host",
        ),
        (
            "a path outside /echo.api/",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/invalid.path/echo-api-cert.pem"),
            "cert_chain_url_path",
        ),
        (
            "/echo.api/../ leaves /echo.api/",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/../echo-api-cert.pem"),
            "cert_chain_url_path",
        ),
        (
            "/ECHO.API/ is another path",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/ECHO.API/echo-api-cert.pem"),
            "cert_chain_url_path",
        ),
        (
            "port 563",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem"),
            "cert_chain_url_port",
        ),
        (
            "an expired signing certificate",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/expired.pem"),
            "certificate_validity",
        ),
        (
            "a signing certificate for another name",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/wrong-name.pem"),
            "certificate_name",
        ),
        (
            "a wildcard is not echo-api.amazon.com itself",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/wildcard.pem"),
            "certificate_name",
        ),
        (
            "a chain to an untrusted root",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/untrusted.pem"),
            "certificate_chain",
        ),
        (
            "a chain URL serving no PEM",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/not-pem.pem"),
            "certificate_chain",
        ),
        (
            "a chain URL answering 404",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/missing.pem"),
            "certificate_fetch",
        ),
        (
            "a chain URL answering 503",
            valid
                .clone()
                .chain_url("https://s3.amazonaws.com/echo.api/unavailable.pem"),
            "certificate_fetch",
        ),
        (
            "a signature of another body",
            Call {
                signature: Call::signed(launch_request(SKILL_ID, 1)).signature,
                ..valid.clone()
            },
            "signature",
        ),
        (
            "the body changed by one byte",
            with_body(valid.body.replacen("LaunchRequest", "LaunchRequesT", 1)),
            "signature",
        ),
        (
            "a signature that is not base64",
            Call {
                signature: Some("not base64!".into()),
                ..valid.clone()
            },
            "signature_header",
        ),
        (
            "no SignatureCertChainUrl",
            Call {
                chain_url: None,
                ..valid.clone()
            },
            "signature_cert_chain_url_header",
        ),
        (
            "no Signature-256",
            Call {
                signature: None,
                ..valid.clone()
            },
            "signature_header",
        ),
        (
            "a stale timestamp",
            Call::signed(launch_request(SKILL_ID, -300)),
            "timestamp",
        ),
        (
            "a future timestamp",
            Call::signed(launch_request(SKILL_ID, 300)),
            "timestamp",
        ),
        (
            "another skill's request",
            Call::signed(launch_request("amzn1.ask.skill.other", 0)),
            "skill_id",
        ),
        (
            "a signed body that is not an Alexa request",
            Call::signed("{\"hello\":1}".into()),
            "envelope",
        ),
    ];
    for (case, call, rule) in cases {
        let reply = call.send(&skill, "/skill").await;
        assert_refused(&reply, rule, case);
        assert!(skill.reached().is_empty(), "{case} reached the skill");
    }
    // The same skill still lets Alexa's own request through.
    assert_eq!(valid.send(&skill, "/skill").await.status, 200);
}

#[tokio::test]
async fn a_body_over_the_bound_is_refused_without_reaching_the_skill() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start_with(&pki, |verifier| verifier.max_body_bytes(64)).await;

    let reply = Call::valid().send(&skill, "/skill").await;

    assert_refused(&reply, "body", "a body over 64 bytes");
    assert!(skill.reached().is_empty());
}

/// The headers are checked before the body is read: a request whose chain URL cannot be
/// Alexa's is answered at once, even when its declared body never comes (over loopback HTTP, a
/// raw socket writing the head only).
#[tokio::test]
async fn a_request_with_broken_headers_is_refused_before_its_body_is_read() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;
    for (chain_url, signature, rule) in [
        (
            "http://s3.amazonaws.com/echo.api/echo-api-cert.pem",
            "c2lnbmF0dXJl",
            "cert_chain_url_scheme",
        ),
        (
            "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
            "not base64!",
            "signature_header",
        ),
    ] {
        let addr = skill.base.trim_start_matches("http://");
        let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
        let head = format!(
            "POST /skill HTTP/1.1\r\nHost: skill\r\nContent-Type: application/json\r\n\
             Content-Length: 100000\r\nSignatureCertChainUrl: {chain_url}\r\n\
             Signature-256: {signature}\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The body is never sent: an answer can only come from the headers alone.
        let mut answer = Vec::new();
        let mut buf = [0u8; 4096];
        let read = tokio::time::timeout(std::time::Duration::from_secs(5), async {
            while !String::from_utf8_lossy(&answer).contains(r#""message""#) {
                let n = stream.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                answer.extend_from_slice(&buf[..n]);
            }
        })
        .await;
        let answer = String::from_utf8_lossy(&answer).into_owned();
        assert!(
            read.is_ok(),
            "{rule}: no answer without the body: {answer:?}"
        );
        assert!(answer.starts_with("HTTP/1.1 400"), "{rule}: {answer}");
        assert!(
            answer.contains(&format!(r#""rule":"{rule}""#)),
            "{rule}: {answer}"
        );
    }
    assert!(skill.reached().is_empty());
    assert_eq!(skill.s3.seen().len(), 0, "nothing was fetched");
}

#[tokio::test]
async fn without_configured_skill_ids_any_skills_signed_request_passes() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start_with(&pki, |verifier| verifier).await;

    let reply = Call::signed(launch_request("amzn1.ask.skill.other", 0))
        .send(&skill, "/skill")
        .await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["applicationId"], "amzn1.ask.skill.other");
}

#[tokio::test]
async fn the_validated_certificate_is_cached_by_normalized_url_and_a_failed_fetch_is_not() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;

    for url in [
        CHAIN_URL,
        CHAIN_URL,
        "https://S3.amazonaws.com:443/echo.api/../echo.api/echo-api-cert.pem",
    ] {
        let reply = Call::valid().chain_url(url).send(&skill, "/skill").await;
        assert_eq!(reply.status, 200, "{url}: {:?}", reply.body);
    }
    assert_eq!(skill.fetches("/echo.api/echo-api-cert.pem"), 1);
    assert_eq!(skill.reached().len(), 3);

    for _ in 0..2 {
        let reply = Call::valid()
            .chain_url("https://s3.amazonaws.com/echo.api/untrusted.pem")
            .send(&skill, "/skill")
            .await;
        assert_refused(&reply, "certificate_chain", "untrusted");
    }
    assert_eq!(skill.fetches("/echo.api/untrusted.pem"), 2);
}

#[tokio::test]
async fn a_chain_host_that_fails_or_cannot_be_reached_is_a_fault_of_the_path_but_a_404_is_not() {
    let pki = AlexaSigningPki::new();
    let s3 = start_s3(&pki).await;
    // A port nothing listens on, held for the test.
    let closed_port = testkit::ClosedPort::new();
    let closed = closed_port.addr();
    let body = launch_request(SKILL_ID, 0);
    let mut headers = http::HeaderMap::new();
    headers.insert(
        "signature-256",
        AlexaSigningPki::sign(body.as_bytes()).parse().unwrap(),
    );
    for (addr, path, unavailable) in [
        (s3.addr, "/echo.api/unavailable.pem", true),
        (closed, "/echo.api/echo-api-cert.pem", true),
        (s3.addr, "/echo.api/missing.pem", false),
    ] {
        let verifier = AlexaRequestVerifier::new()
            .root_certificates_pem(pki.root_pem.as_bytes())
            .unwrap()
            .fetcher(LoopbackS3 {
                addr,
                http: HttpCertificateFetcher::new(),
            });
        let url = format!("https://s3.amazonaws.com{path}");
        headers.insert("signaturecertchainurl", url.parse().unwrap());

        let refusal = verifier
            .verify(&headers, body.as_bytes())
            .await
            .expect_err(path);

        assert_eq!(refusal.rule(), Rule::CertificateFetch, "{addr}{path}");
        assert_eq!(
            refusal.is_unavailable(),
            unavailable,
            "{addr}{path}: {refusal}"
        );
    }
}

/// Log lines written on this thread (a current-thread test runtime runs the servers here too).
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Logs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Logs {
    type Writer = Logs;

    fn make_writer(&'a self) -> Logs {
        self.clone()
    }
}

impl Logs {
    fn take(&self) -> String {
        String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
    }
}

#[tokio::test]
async fn a_refusal_is_logged_at_info_with_its_rule_and_a_chain_host_fault_at_warn() {
    let logs = Logs::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(logs.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;
    let call = Call::valid();

    let reply = call
        .clone()
        .chain_url("https://notamazon.com/echo.api/echo-api-cert.pem")
        .send(&skill, "/skill")
        .await;
    assert_refused(&reply, "cert_chain_url_host", "another host");
    let first = logs.take();
    assert!(first.contains("INFO"), "{first}");
    assert!(first.contains("rule=\"cert_chain_url_host\""), "{first}");

    let reply = call
        .clone()
        .chain_url("https://s3.amazonaws.com/echo.api/unavailable.pem")
        .send(&skill, "/skill")
        .await;
    assert_refused(&reply, "certificate_fetch", "503");
    let second = logs.take();
    assert!(second.contains("WARN"), "{second}");
    assert!(second.contains("rule=\"certificate_fetch\""), "{second}");
    assert!(second.contains("503"), "the cause is logged: {second}");

    // Neither the log nor the answer carries the token or the signature.
    let answer = String::from_utf8_lossy(&reply.body).into_owned();
    for secret in ["AR8AQ", call.signature.as_deref().unwrap()] {
        for text in [&first, &second, &answer] {
            assert!(!text.contains(secret), "{secret} in {text}");
        }
    }
}

#[cfg(feature = "axum")]
#[tokio::test]
async fn linked_account_behind_the_layer_reads_the_verified_envelope() {
    let pki = AlexaSigningPki::new();
    let skill = Skill::start(&pki).await;

    let reply = Call::valid().send(&skill, "/linked").await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(
        reply.json(),
        json!({"accessToken": "00Dx0!AR8AQ", "instanceUrl": "https://na1.salesforce.com"})
    );
    let refused = Call {
        signature: None,
        ..Call::valid()
    }
    .send(&skill, "/linked")
    .await;
    assert_refused(&refused, "signature_header", "unsigned, to LinkedAccount");
}

/// The rule names a refusal may carry.
const RULES: &[&str] = &[
    "signature_cert_chain_url_header",
    "cert_chain_url_scheme",
    "cert_chain_url_host",
    "cert_chain_url_path",
    "cert_chain_url_port",
    "certificate_fetch",
    "certificate_chain",
    "certificate_validity",
    "certificate_name",
    "signature_header",
    "signature",
    "body",
    "envelope",
    "timestamp",
    "skill_id",
];

mod hostile_input {
    use super::*;
    use proptest::prelude::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use tower::{service_fn, Layer, ServiceExt};

    fn chain_url() -> impl Strategy<Value = Option<String>> {
        prop_oneof![
            Just(None),
            Just(Some(CHAIN_URL.to_string())),
            "[ -~]{0,60}".prop_map(Some),
            "[a-zA-Z./:%0-9@]{0,30}"
                .prop_map(|tail| Some(format!("https://s3.amazonaws.com/echo.api/{tail}"))),
            "[a-zA-Z./:%0-9@]{0,30}"
                .prop_map(|tail| Some(format!("https://s3.amazonaws.com{tail}"))),
        ]
    }

    /// A body: arbitrary bytes, or an envelope-shaped JSON with hostile values (never one the
    /// verifier may accept: the application id cannot be `SKILL_ID`, the timestamp is no time).
    fn body() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300),
            ("[ -~]{0,30}", "[a-z]{0,12}", "[ -~]{0,20}").prop_map(|(timestamp, app, kind)| {
                json!({
                    "version": "1.0",
                    "context": {"System": {"application": {"applicationId": app}}},
                    "request": {"type": kind, "timestamp": timestamp},
                })
                .to_string()
                .into_bytes()
            }),
            Just(b"{\"request\":{\"timestamp\":12}}".to_vec()),
            Just(b"[]".to_vec()),
        ]
    }

    /// How the request is signed: not at all, garbage, a valid signature of another body, or a
    /// valid signature of this very body (then everything after the signature is exercised).
    #[derive(Clone, Debug)]
    enum Signing {
        None,
        Garbage(String),
        OtherBody,
        ThisBody,
    }

    fn signing() -> impl Strategy<Value = Signing> {
        prop_oneof![
            Just(Signing::None),
            "[ -~]{0,400}".prop_map(Signing::Garbage),
            Just(Signing::OtherBody),
            Just(Signing::ThisBody),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

        #[test]
        fn hostile_requests_are_refused_400_naming_a_rule_and_never_reach_the_skill(
            url in chain_url(),
            signing in signing(),
            body in body(),
            content_type in prop::option::of("[ -~]{0,30}"),
        ) {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            let pki = AlexaSigningPki::new();
            let verifier = AlexaRequestVerifier::new()
                .skill_ids([SKILL_ID])
                .root_certificates_pem(pki.root_pem.as_bytes())
                .unwrap()
                // In process (the loopback tests above prove the fetch itself).
                .fetcher(FixedChainFetcher::new(pki.chain_pem()));
            let reached = Arc::new(AtomicUsize::new(0));
            let counter = Arc::clone(&reached);
            let skill = service_fn(move |_: http::Request<account_link_bridge::FullBody>| {
                counter.fetch_add(1, Ordering::SeqCst);
                async { Ok::<_, std::convert::Infallible>(http::Response::new(account_link_bridge::FullBody::default())) }
            });
            let service = VerifyAlexaRequestLayer::new(verifier).layer(skill);
            let mut request = http::Request::post("/skill");
            if let Some(url) = &url {
                if let Ok(value) = http::HeaderValue::from_str(url) {
                    request = request.header("SignatureCertChainUrl", value);
                }
            }
            let signature = match &signing {
                Signing::None => None,
                Signing::Garbage(text) => Some(text.clone()),
                Signing::OtherBody => Some(AlexaSigningPki::sign(b"{\"another\":\"body\"}")),
                Signing::ThisBody => Some(AlexaSigningPki::sign(&body)),
            };
            if let Some(signature) = signature.and_then(|s| http::HeaderValue::from_str(&s).ok()) {
                request = request.header("Signature-256", signature);
            }
            if let Some(value) = content_type.and_then(|c| http::HeaderValue::from_str(&c).ok()) {
                request = request.header("content-type", value);
            }
            let request = request.body(http_body_util::Full::new(Bytes::from(body))).unwrap();
            let response = runtime.block_on(service.oneshot(request)).unwrap();
            prop_assert_eq!(response.status(), 400);
            prop_assert_eq!(reached.load(Ordering::SeqCst), 0);
            let bytes = runtime
                .block_on(http_body_util::BodyExt::collect(response.into_body()))
                .unwrap()
                .to_bytes();
            let answer: Value = serde_json::from_slice(&bytes).unwrap();
            prop_assert_eq!(&answer["error"], "alexa_request_not_verified");
            let rule = answer["rule"].as_str().unwrap_or_default().to_string();
            prop_assert!(RULES.contains(&rule.as_str()), "unknown rule {}", rule);
        }
    }
}

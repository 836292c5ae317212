//! The production bridge: HTTPS both ways, upstream timeouts and refusals, HTTP/2, `--help`.

use testkit as support;

use std::time::{Duration, Instant};

use account_link_bridge::upstream::{tls_config_with_roots, Upstream};
use account_link_bridge::{PackedToken, Provider};
use account_link_bridge_server::Bridge;
use bytes::Bytes;
use http::{Request, Version};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use support::{post, FakeUpstream, Fault, TestPki};

const EXCHANGE: &str =
    "grant_type=authorization_code&code=c0de&client_id=alexa&client_secret=s3cret";

#[tokio::test]
async fn the_bridge_reaches_an_https_upstream_signed_by_a_private_ca() {
    let pki = TestPki::new();
    let fake = FakeUpstream::salesforce()
        .tls(pki.server_config())
        .access_token("tls-token")
        .await;
    let url = fake.token_url();
    assert!(url.starts_with("https://localhost:"), "{url}");
    let upstream =
        Upstream::with_tls(url.parse().unwrap(), tls_config_with_roots(pki.roots())).unwrap();
    let base = support::serve_service(Bridge::new(Provider::salesforce(), upstream)).await;

    let reply = post(&format!("{base}/token"), &[], EXCHANGE).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let token = PackedToken::unpack(reply.json()["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(token.access_token(), "tls-token");
    assert!(fake
        .last()
        .body
        .starts_with(b"grant_type=authorization_code"));
}

#[tokio::test]
async fn an_upstream_certificate_from_an_unknown_ca_is_a_502_server_error() {
    let pki = TestPki::new();
    let fake = FakeUpstream::salesforce().tls(pki.server_config()).await;
    let url = fake.token_url();
    // Trusts only the public webpki roots, not the test CA.
    let base = support::serve_service(Bridge::new(
        Provider::salesforce(),
        Upstream::new(url.parse().unwrap()),
    ))
    .await;

    let reply = post(&format!("{base}/token"), &[], EXCHANGE).await;

    assert_eq!(reply.status, 502);
    assert_eq!(reply.oauth_error(), "server_error");
    assert!(reply.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("TLS"));
}

#[tokio::test]
async fn a_stalled_upstream_is_answered_504_json_within_the_timeout_plus_a_margin() {
    let fake = FakeUpstream::salesforce()
        .delay(Duration::from_secs(30))
        .await;
    let upstream =
        Upstream::new(fake.token_url().parse().unwrap()).timeout(Duration::from_millis(400));
    let base = support::serve_service(Bridge::new(Provider::salesforce(), upstream)).await;

    let started = Instant::now();
    let reply = post(&format!("{base}/token"), &[], EXCHANGE).await;
    let elapsed = started.elapsed();

    assert_eq!(reply.status, 504);
    assert_eq!(reply.oauth_error(), "temporarily_unavailable");
    assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
    assert!(elapsed < Duration::from_millis(1400), "{elapsed:?}");
}

#[tokio::test]
async fn an_upstream_that_stalls_mid_body_is_also_bounded_by_the_timeout() {
    let fake = FakeUpstream::salesforce().fault(Fault::StallMidBody).await;
    let upstream =
        Upstream::new(fake.token_url().parse().unwrap()).timeout(Duration::from_millis(400));
    let base = support::serve_service(Bridge::new(Provider::salesforce(), upstream)).await;

    let started = Instant::now();
    let reply = post(&format!("{base}/token"), &[], EXCHANGE).await;

    assert_eq!(reply.status, 504);
    assert!(started.elapsed() < Duration::from_millis(1400));
}

#[tokio::test]
async fn routes_answer_health_404_and_405_as_json() {
    let upstream = FakeUpstream::salesforce().await;
    let base = support::serve_service(Bridge::new(
        Provider::salesforce(),
        Upstream::new(upstream.token_url().parse().unwrap()),
    ))
    .await;

    let health = support::send(
        Request::get(format!("{base}/healthz"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(health.status, 200);
    assert_eq!(&health.body[..], b"ok\n");

    let missing = support::send(
        Request::get(format!("{base}/nope"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(missing.status, 404);
    assert_eq!(missing.oauth_error(), "invalid_request");

    let wrong = support::send(
        Request::get(format!("{base}/token"))
            .body(Full::default())
            .unwrap(),
    )
    .await;
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("POST"));
    assert!(upstream.seen().is_empty());
}

#[test]
fn help_documents_every_option_of_the_command_line_contract() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
        .arg("--help")
        .output()
        .unwrap();
    assert!(output.status.success());
    let help = String::from_utf8(output.stdout).unwrap();
    for option in [
        "--listen",
        "--upstream-token-url",
        "--provider",
        "--expires-in",
        "--upstream-timeout",
        "--tls-cert",
        "--tls-key",
        "--log-format",
        "BRIDGE_UPSTREAM_TOKEN_URL",
        "--body-read-timeout",
        "--idle-timeout",
        "--max-connections",
        "BRIDGE_MAX_CONNECTIONS",
        "--max-requests-per-connection",
        "--allow-insecure-upstream",
        "BRIDGE_ALLOW_INSECURE_UPSTREAM",
        "--metrics-listen",
        "BRIDGE_METRICS_LISTEN",
    ] {
        assert!(help.contains(option), "--help lacks {option}:\n{help}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_serves_https_and_http2_with_a_given_certificate() {
    let pki = TestPki::new();
    let (cert, key) = pki.write_leaf();
    // Port 0, read back from the bridge's log (a probed port could be taken meanwhile).
    let mut bridge = testkit::process::BridgeProcess::start(
        std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
            .args(["--listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&cert)
            .arg("--tls-key")
            .arg(&key)
            .env_remove("RUST_LOG")
            .stdout(std::process::Stdio::null()),
    );
    let port = bridge.addr().rsplit(':').next().unwrap().to_string();

    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config_with_roots(pki.roots()))
        .https_only()
        .enable_http2()
        .build();
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new())
        .http2_only(true)
        .build(connector);
    // The certificate names `localhost`.
    let request = Request::post(format!("https://localhost:{port}/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(Full::new(Bytes::from_static(EXCHANGE.as_bytes())))
        .unwrap();
    let response = client.request(request).await;
    bridge.kill();
    let response = response.unwrap_or_else(|e| panic!("no HTTPS answer: {e:?}"));
    assert_eq!(response.version(), Version::HTTP_2);
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(answer["expires_in"], 5400);
}

/// Runs the `bridge` binary with `args` until it exits or has started serving; returns whether
/// it exited, with everything it wrote to stderr by then.
fn start_bridge_briefly(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let args: Vec<&str> = ["--listen", "127.0.0.1:0"]
        .into_iter()
        .chain(args.iter().copied())
        .collect();
    crate::startup_checks::start_bridge(&args)
}

#[test]
fn a_plain_http_upstream_that_is_not_loopback_is_refused_at_startup() {
    for args in [
        &[
            "--upstream-token-url",
            "http://login.example.com/services/oauth2/token",
        ][..],
        &[
            "--upstream-token-url",
            "https://login.example.com/services/oauth2/token",
            "--upstream-authorize-url",
            "http://login.example.com/services/oauth2/authorize",
        ][..],
    ] {
        let (exited, stderr) = start_bridge_briefly(args);
        let status = exited.expect("the bridge refused to start");
        assert!(!status.success());
        assert!(stderr.contains("plain http"), "{stderr}");
        assert!(stderr.contains("--allow-insecure-upstream"), "{stderr}");
    }

    // Said explicitly, it starts; and a loopback http upstream needs no saying.
    let (exited, _) = start_bridge_briefly(&[
        "--upstream-token-url",
        "http://login.example.com/services/oauth2/token",
        "--allow-insecure-upstream",
    ]);
    assert!(
        exited.is_none(),
        "refused despite --allow-insecure-upstream"
    );
    let (exited, _) = start_bridge_briefly(&[
        "--upstream-token-url",
        "http://127.0.0.1:9/services/oauth2/token",
    ]);
    assert!(exited.is_none(), "a loopback upstream was refused");
}

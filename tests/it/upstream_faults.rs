//! Upstream faults: each is answered with RFC 6749 JSON within a bounded time, never with
//! `invalid_grant`/`invalid_client`, and leaks no file descriptor.

use testkit as support;

use std::time::{Duration, Instant};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenExchangeLayer};
use axum::Router;
use support::{post, Answer, FakeUpstream, Fault};

const EXCHANGE: &str =
    "grant_type=authorization_code&code=c0de&client_id=alexa&client_secret=s3cret";
const TIMEOUT: Duration = Duration::from_millis(500);

async fn bridge(upstream_url: &str) -> String {
    let upstream = Upstream::new(upstream_url.parse().unwrap()).timeout(TIMEOUT);
    let token = tower::ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(Provider::salesforce()))
        .service(upstream);
    let addr = support::serve_axum(Router::new().route_service("/token", token)).await;
    format!("http://{addr}/token")
}

/// Runs one exchange against a faulty upstream and checks the answer's shape and timing.
async fn fault(upstream_url: &str, status: u16, error: &str) -> String {
    let url = bridge(upstream_url).await;
    let started = Instant::now();
    let reply = post(
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        EXCHANGE,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < TIMEOUT + Duration::from_millis(700),
        "answered after {elapsed:?}"
    );
    assert_eq!(reply.status, status, "{:?}", reply.body);
    let code = reply.oauth_error();
    assert_eq!(code, error);
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    for secret in ["c0de", "s3cret"] {
        assert!(!description.contains(secret));
    }
    description
}

/// The URL of a fake Salesforce that plays `fault` instead of answering.
async fn faulty(fault: Fault) -> String {
    FakeUpstream::salesforce().fault(fault).await.token_url()
}

/// The URL of a fake Salesforce that answers every exchange with `answer`.
async fn answering(answer: Answer) -> String {
    FakeUpstream::salesforce()
        .answer_with(move |_| Some(answer.clone()))
        .await
        .token_url()
}

#[tokio::test]
async fn stalled_before_headers_is_504() {
    let url = FakeUpstream::salesforce()
        .delay(Duration::from_secs(30))
        .await
        .token_url();
    fault(&url, 504, "temporarily_unavailable").await;
}

#[tokio::test]
async fn dripping_the_body_is_cut_off_by_the_timeout() {
    let url = faulty(Fault::Drip).await;
    fault(&url, 504, "temporarily_unavailable").await;
}

#[tokio::test]
async fn a_reset_mid_body_is_502() {
    let url = faulty(Fault::BreakOff).await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("broke off"), "{description}");
}

#[tokio::test]
async fn closing_without_an_answer_is_502() {
    let url = faulty(Fault::HangUp).await;
    fault(&url, 502, "temporarily_unavailable").await;
}

#[tokio::test]
async fn an_oversized_answer_is_502() {
    let body = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(200_000));
    let url = answering(Answer::json(200, body)).await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("exceeded"), "{description}");
}

#[tokio::test]
async fn gigantic_json_streamed_forever_is_cut_at_the_cap() {
    let url = faulty(Fault::Endless).await;
    fault(&url, 502, "server_error").await;
}

#[tokio::test]
async fn invalid_json_is_502() {
    let url = answering(Answer::json(200, r#"{"access_token": "abc", }"#)).await;
    fault(&url, 502, "server_error").await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_502() {
    let target = FakeUpstream::salesforce().await;
    let url = faulty(Fault::Redirect(307, target.token_url())).await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("307"), "{description}");
    assert_eq!(target.calls(), 0, "the redirect was followed");
}

#[tokio::test]
async fn an_html_403_from_a_proxy_never_reads_as_a_dead_grant() {
    // The page echoes the code and the secret; `fault` checks neither reaches Alexa.
    let url = faulty(Fault::Html(403)).await;
    fault(&url, 502, "server_error").await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_faults_leak_no_file_descriptors() {
    let stall = FakeUpstream::salesforce()
        .delay(Duration::from_secs(3))
        .await
        .token_url();
    let reset = faulty(Fault::HangUp).await;
    let stall_bridge = bridge(&stall).await;
    let reset_bridge = bridge(&reset).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    // Warm up, so that pools and runtime threads exist before counting.
    post(&reset_bridge, &form, EXCHANGE).await;
    let before = open_fds();
    let mut rounds = Vec::new();
    for _ in 0..20 {
        for url in [stall_bridge.clone(), reset_bridge.clone()] {
            rounds.push(tokio::spawn(async move {
                post(
                    &url,
                    &[("content-type", "application/x-www-form-urlencoded")],
                    EXCHANGE,
                )
                .await
            }));
        }
    }
    for round in rounds {
        assert!(round.await.unwrap().status.is_server_error());
    }
    // Let the stalled upstream tasks end and closed sockets be reaped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = open_fds();
    assert!(
        after <= before + 8,
        "file descriptors: {before} before, {after} after"
    );
}

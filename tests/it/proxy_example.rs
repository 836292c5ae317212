//! The hyper reverse proxy example over loopback: one Alexa-style exchange through it, as Alexa
//! reads the answer, and a 404 JSON answer off its one route.

use testkit as support;

#[allow(dead_code)]
#[path = "../../examples/proxy.rs"]
mod example;

use support::{post, FakeUpstream};
use tokio::net::TcpListener;

async fn start_proxy(upstream: &FakeUpstream) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let token_url = upstream.token_url();
    tokio::spawn(async move { example::serve(listener, &token_url).await });
    base
}

#[tokio::test]
async fn an_alexa_exchange_through_the_proxy_reaches_the_upstream_and_comes_back_packed() {
    let upstream = FakeUpstream::salesforce().await;
    let base = start_proxy(&upstream).await;

    // As Alexa has been seen sending it: JSON, no Content-Type, credentials in the body.
    let reply = post(
        &format!("{base}/token"),
        &[],
        r#"{"grant_type":"authorization_code","code":"abc","client_id":"alexa","client_secret":"s3cret"}"#,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    support::assert_salesforce_token(&reply.json());

    let seen = upstream.last();
    assert_eq!(seen.path, "/services/oauth2/token");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.param("code").as_deref(), Some("abc"));
    assert_eq!(
        seen.param("grant_type").as_deref(),
        Some("authorization_code")
    );
    // The Salesforce preset sends the client's credentials upstream as form parameters.
    assert_eq!(seen.param("client_id").as_deref(), Some("alexa"));
    assert_eq!(seen.param("client_secret").as_deref(), Some("s3cret"));
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn the_proxy_answers_404_json_off_its_token_route_without_calling_upstream() {
    let upstream = FakeUpstream::salesforce().await;
    let base = start_proxy(&upstream).await;
    let reply = post(
        &format!("{base}/elsewhere"),
        &[],
        "grant_type=authorization_code",
    )
    .await;
    assert_eq!(reply.status, 404);
    assert_eq!(reply.json()["error"], "not_found");
    assert!(upstream.seen().is_empty());
}

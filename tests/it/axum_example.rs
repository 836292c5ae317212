//! The axum example's app over loopback: its token route packs what its skill route unpacks.
#![cfg(feature = "axum")]

use testkit as support;

#[allow(dead_code)]
#[path = "../../examples/axum.rs"]
mod example;

use support::{post, FakeUpstream};

#[tokio::test]
async fn the_skill_route_unpacks_what_the_token_route_packed() {
    let upstream = FakeUpstream::salesforce().await;
    let addr = support::serve_axum(example::app(&upstream.token_url())).await;

    let token = post(
        &format!("http://{addr}/token"),
        &[("content-type", "application/x-www-form-urlencoded")],
        "grant_type=authorization_code&code=c&client_id=alexa&client_secret=s",
    )
    .await;
    assert_eq!(token.status, 200);
    let access_token = token.json()["access_token"].as_str().unwrap().to_string();
    assert!(access_token.ends_with(" https://na1.salesforce.com"));

    // Alexa then calls the skill with that token in the envelope.
    let envelope = serde_json::json!({
        "version": "1.0",
        "session": {"new": true, "sessionId": "s", "application": {"applicationId": "a"}, "user": {"userId": "u", "accessToken": access_token}},
        "context": {"System": {"application": {"applicationId": "a"}, "user": {"userId": "u", "accessToken": access_token}, "device": {"deviceId": "d"}, "apiEndpoint": "https://api.amazonalexa.com"}},
        "request": {"type": "IntentRequest", "requestId": "r", "timestamp": "2026-11-25T00:00:00Z", "locale": "en-US", "intent": {"name": "ListAccounts", "confirmationStatus": "NONE"}}
    });
    let reply = post(
        &format!("http://{addr}/alexa"),
        &[("content-type", "application/json")],
        envelope.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    let speech = reply.json()["response"]["outputSpeech"]["text"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        speech,
        format!(
            "Linked. I would call https://na1.salesforce.com with a token of {} characters.",
            "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9".len()
        )
    );
}

#[tokio::test]
async fn an_unlinked_user_gets_the_link_account_card() {
    let upstream = FakeUpstream::salesforce().await;
    let addr = support::serve_axum(example::app(&upstream.token_url())).await;
    let envelope = serde_json::json!({
        "version": "1.0",
        "context": {"System": {"application": {"applicationId": "a"}, "user": {"userId": "u"}}},
        "request": {"type": "LaunchRequest", "requestId": "r", "timestamp": "2026-11-25T00:00:00Z", "locale": "en-US"}
    });
    let reply = post(
        &format!("http://{addr}/alexa"),
        &[("content-type", "application/json")],
        envelope.to_string(),
    )
    .await;
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["response"]["card"]["type"], "LinkAccount");
}

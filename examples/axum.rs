//! An axum app that is its own Alexa bridge: the token exchange mounted on `/token` (the
//! upstream client wrapped with `.layer()`), and the skill's endpoint on `/alexa`, which unpacks the token the bridge packed.
//!
//! ```text
//! BRIDGE_UPSTREAM_TOKEN_URL=https://login.salesforce.com/services/oauth2/token \
//!     cargo run --example axum --features axum
//! ```

use std::time::Duration;

use account_link_bridge::skill::LinkedAccount;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenExchangeLayer};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tower::ServiceBuilder;

/// The app: `POST /token` is Alexa's access token URI, `POST /alexa` the skill endpoint.
pub fn app(upstream_token_url: &str) -> Router {
    let upstream = Upstream::new(upstream_token_url.parse().expect("an absolute URL"))
        .timeout(Duration::from_secs(4));
    // The exchange layer wraps the upstream client like any Tower layer.
    let token = ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(Provider::salesforce()))
        .service(upstream);
    Router::new()
        .route_service("/token", token)
        .route("/alexa", post(skill))
}

/// The skill: `LinkedAccount` reads `context.System.user.accessToken` and unpacks it; when the
/// user has not linked yet, it answers Alexa's link-account card by itself.
async fn skill(account: LinkedAccount) -> Json<Value> {
    let speech = format!(
        "Linked. I would call {} with a token of {} characters.",
        account.instance_url().unwrap_or("your instance"),
        account.access_token().len()
    );
    Json(json!({
        "version": "1.0",
        "response": {
            "outputSpeech": { "type": "PlainText", "text": speech },
            "shouldEndSession": true
        }
    }))
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt::init();
    let upstream = std::env::var("BRIDGE_UPSTREAM_TOKEN_URL").unwrap_or_else(|_| {
        eprintln!("set BRIDGE_UPSTREAM_TOKEN_URL to the upstream token endpoint");
        std::process::exit(2);
    });
    let listen = std::env::var("BRIDGE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .expect("listen");
    tracing::info!("serving POST http://{listen}/token and POST http://{listen}/alexa");
    axum::serve(listener, app(&upstream)).await.expect("serve");
}

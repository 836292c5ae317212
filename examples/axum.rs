//! An axum app that is its own Alexa account-linking bridge and its own skill endpoint:
//!
//! | route | Alexa console field / role |
//! | --- | --- |
//! | `GET /authorize` | *Your Web Authorization URI* (the middleman) |
//! | `GET /callback` | the callback URL registered upstream |
//! | `POST /token` | *Access Token URI* (the exchange, packing `instance_url`) |
//! | `POST /alexa` | the skill's HTTPS endpoint, behind Alexa's request verification |
//!
//! ```text
//! cargo run --example axum --features axum,verify
//! ```
//!
//! With no `BRIDGE_UPSTREAM_TOKEN_URL` it starts a small Salesforce-like demo upstream on loopback,
//! so every route works at once; it prints a `curl` for `/token` and one INFO line per exchange.
//! Environment (all optional):
//!
//! | variable | meaning | default |
//! | --- | --- | --- |
//! | `EXAMPLE_LISTEN` | address to serve on | `127.0.0.1:3000` (the `bridge` server takes 8080) |
//! | `BRIDGE_UPSTREAM_TOKEN_URL`, `BRIDGE_UPSTREAM_AUTHORIZE_URL` | a real upstream | the demo upstream |
//! | `BRIDGE_PUBLIC_URL` | the app's external base URL (for `/callback`) | `http://<listen>` |
//! | `BRIDGE_STATE_KEY` | base64 key sealing the OAuth state (share it across replicas) | random |
//! | `BRIDGE_ALEXA_VENDOR_ID` | the vendor id of the Alexa redirect URLs to accept | any (warned) |
//! | `ALEXA_SKILL_ID` | the skill id requests to `/alexa` must carry | any (warned) |
//! | `ALEXA_VERIFY_TEST_ROOT`, `ALEXA_VERIFY_TEST_CHAIN` | PEM files: a test PKI's root, and the chain served for every certificate URL (tests only; Amazon's chain and the webpki roots otherwise) | unset |

use std::collections::HashMap;
use std::net::SocketAddr;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::diagnostics::DiagnosticsLayer;
use account_link_bridge::skill::verify::{
    AlexaRequestVerifier, FixedChainFetcher, VerifyAlexaRequestLayer,
};
use account_link_bridge::skill::LinkedAccount;
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenExchangeLayer};
use axum::extract::Query;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::{json, Value};
use tower::ServiceBuilder;

/// What the app is built from.
pub struct Settings {
    /// The upstream token endpoint.
    pub upstream_token_url: String,
    /// The upstream authorization endpoint.
    pub upstream_authorize_url: String,
    /// The app's external base URL: `/callback` is under it.
    pub public_url: String,
    /// Seals the OAuth state and the codes `/callback` hands Alexa.
    pub sealer: StateSealer,
    /// The vendor ids of the Alexa redirect URLs accepted (empty: any skill).
    pub alexa_vendor_ids: Vec<String>,
    /// Checks that requests to `/alexa` come from Alexa.
    pub verifier: AlexaRequestVerifier,
}

/// The app: the bridge's three routes and the skill's endpoint.
pub fn app(settings: Settings) -> Router {
    let mut authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(settings.upstream_authorize_url)
        .upstream_token_url(settings.upstream_token_url.clone())
        .public_url(settings.public_url)
        .sealer(settings.sealer)
        .pkce(true);
    if !settings.alexa_vendor_ids.is_empty() {
        authorize = authorize.alexa_vendor_ids(settings.alexa_vendor_ids);
    }
    let authorize = authorize.build().expect("a valid middleman configuration");
    // The token endpoint opens the codes /callback sealed, then exchanges them upstream.
    let provider = Provider::salesforce().token_request_hook(authorize.code_opener());
    let upstream = Upstream::new(
        settings
            .upstream_token_url
            .parse()
            .expect("an absolute URL"),
    );
    let token = ServiceBuilder::new()
        .layer(DiagnosticsLayer::new()) // the INFO line per exchange
        .layer(TokenExchangeLayer::new(provider))
        .service(upstream);
    let middleman = ServiceBuilder::new()
        .layer(DiagnosticsLayer::new())
        .service(authorize);
    Router::new()
        .route_service("/authorize", middleman.clone())
        .route_service("/callback", middleman)
        .route_service("/token", token)
        .route(
            "/alexa",
            post(skill).layer(VerifyAlexaRequestLayer::new(settings.verifier)),
        )
}

/// The skill: `LinkedAccount` reads `context.System.user.accessToken` and unpacks it; when the
/// user has not linked yet, it answers Alexa's link-account card by itself. The request reached
/// this handler only if Alexa signed it.
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
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    let listen = env("EXAMPLE_LISTEN").unwrap_or_else(|| "127.0.0.1:3000".into());
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("cannot listen on {listen}: {e}; set EXAMPLE_LISTEN to a free address");
            std::process::exit(2);
        }
    };
    let addr = listener.local_addr().expect("a bound address");
    let (upstream_token_url, upstream_authorize_url) = match env("BRIDGE_UPSTREAM_TOKEN_URL") {
        Some(token) => {
            let Some(authorize) = env("BRIDGE_UPSTREAM_AUTHORIZE_URL") else {
                eprintln!("BRIDGE_UPSTREAM_TOKEN_URL needs BRIDGE_UPSTREAM_AUTHORIZE_URL too");
                std::process::exit(2);
            };
            (token, authorize)
        }
        None => {
            let demo = start_demo_upstream().await;
            tracing::info!(%demo, "no BRIDGE_UPSTREAM_TOKEN_URL: started a Salesforce-like demo upstream");
            (
                format!("http://{demo}/services/oauth2/token"),
                format!("http://{demo}/services/oauth2/authorize"),
            )
        }
    };
    let sealer = match env("BRIDGE_STATE_KEY") {
        Some(keys) => StateSealer::from_base64_keys(&keys).expect("BRIDGE_STATE_KEY: base64 keys"),
        None => {
            tracing::warn!("no BRIDGE_STATE_KEY: a random key; links in flight break on restart");
            StateSealer::random()
        }
    };
    let alexa_vendor_ids: Vec<String> = env("BRIDGE_ALEXA_VENDOR_ID")
        .map(|ids| ids.split(',').map(|id| id.trim().to_string()).collect())
        .unwrap_or_default();
    if alexa_vendor_ids.is_empty() {
        tracing::warn!("no BRIDGE_ALEXA_VENDOR_ID: any Alexa skill may use /authorize");
    }
    let settings = Settings {
        upstream_token_url,
        upstream_authorize_url,
        public_url: env("BRIDGE_PUBLIC_URL").unwrap_or_else(|| format!("http://{addr}")),
        sealer,
        alexa_vendor_ids,
        verifier: verifier(),
    };
    tracing::info!(
        "serving GET /authorize, GET /callback, POST /token, POST /alexa on http://{addr}"
    );
    println!("listening on http://{addr}");
    println!(
        "try: curl -s -X POST http://{addr}/token -d 'grant_type=authorization_code&code=demo-code&client_id=alexa&client_secret=demo-secret'"
    );
    axum::serve(listener, app(settings)).await.expect("serve");
}

/// Alexa's request verification: Amazon's certificate chain and the webpki roots, or a test
/// PKI named by the `ALEXA_VERIFY_TEST_*` variables.
fn verifier() -> AlexaRequestVerifier {
    let mut verifier = AlexaRequestVerifier::new();
    match env("ALEXA_SKILL_ID") {
        Some(id) => verifier = verifier.skill_ids([id]),
        None => tracing::warn!("no ALEXA_SKILL_ID: /alexa accepts any skill's signed requests"),
    }
    if let (Some(root), Some(chain)) = (
        env("ALEXA_VERIFY_TEST_ROOT"),
        env("ALEXA_VERIFY_TEST_CHAIN"),
    ) {
        let root = std::fs::read(root).expect("ALEXA_VERIFY_TEST_ROOT: a PEM file");
        let chain = std::fs::read(chain).expect("ALEXA_VERIFY_TEST_CHAIN: a PEM file");
        verifier = verifier
            .root_certificates_pem(&root)
            .expect("ALEXA_VERIFY_TEST_ROOT: PEM certificates")
            .fetcher(FixedChainFetcher::new(chain));
        tracing::warn!("request verification trusts the test PKI of ALEXA_VERIFY_TEST_ROOT");
    }
    verifier
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// A Salesforce-like upstream on loopback: `/authorize` sends the browser straight back with a
/// code; `/token` answers any code but `expired-code` with a token, an `instance_url` and, like
/// Salesforce, no `expires_in`.
pub async fn start_demo_upstream() -> SocketAddr {
    let demo = Router::new()
        .route("/services/oauth2/authorize", get(demo_authorize))
        .route("/services/oauth2/token", post(demo_token));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("a bound address");
    tokio::spawn(async move { axum::serve(listener, demo).await });
    addr
}

async fn demo_authorize(Query(query): Query<HashMap<String, String>>) -> impl IntoResponse {
    let (Some(redirect_uri), Some(state)) = (query.get("redirect_uri"), query.get("state")) else {
        return (
            axum::http::StatusCode::BAD_REQUEST,
            "redirect_uri and state required",
        )
            .into_response();
    };
    let mut back = url::Url::parse(redirect_uri).expect("the bridge's callback URL");
    back.query_pairs_mut()
        .append_pair("code", "demo-code")
        .append_pair("state", state);
    // 302 Found, as authorization servers answer.
    (
        axum::http::StatusCode::FOUND,
        [(axum::http::header::LOCATION, back.to_string())],
    )
        .into_response()
}

async fn demo_token(Form(form): Form<HashMap<String, String>>) -> impl IntoResponse {
    if form.get("code").map(String::as_str) == Some("expired-code") {
        let error =
            json!({"error": "invalid_grant", "error_description": "expired authorization code"});
        return (axum::http::StatusCode::BAD_REQUEST, Json(error));
    }
    let answer = json!({
        "access_token": "00Dx0000000BV7z!AR8AQ.demo-access-token",
        "refresh_token": "5Aep861demo-refresh-token",
        "instance_url": "https://demo.my.salesforce.com",
        "token_type": "Bearer",
        "issued_at": "1764547200000"
    });
    (axum::http::StatusCode::OK, Json(answer))
}

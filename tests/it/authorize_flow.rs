//! The authorization middleman over real loopback HTTP: testkit's fake Salesforce (authorize and
//! token endpoints), one or two bridges serving `/authorize`, `/callback` and `/token`, and a
//! client that never follows redirects.

use testkit as support;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::state::{StateKey, StateSealer};
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{PackedToken, Provider, TokenExchangeLayer};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use sha2::{Digest, Sha256};
use support::FakeUpstream;
use tower::Layer;
use url::Url;

const ALEXA_REDIRECT: &str = "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA";
const ALEXA_STATE: &str = "alexa-state-A1b2/+= ?&";
const UPSTREAM_CLIENT_ID: &str = "3MVG9-bridge-app";

fn key(byte: u8) -> StateKey {
    StateKey::from_bytes([byte; 32])
}

// ---------------------------------------------------------------------------------------------
// The upstream authorization server: testkit's fake Salesforce, which redeems only the codes its
// authorize endpoint issued, once, with their redirect_uri and PKCE verifier.

fn upstream() -> support::FakeUpstreamBuilder {
    FakeUpstream::salesforce().issued_codes_only()
}

async fn start_upstream() -> FakeUpstream {
    upstream().await
}

/// The form of the last request the upstream token endpoint received.
fn last_token_request(upstream: &FakeUpstream) -> HashMap<String, String> {
    upstream.last().form().into_iter().collect()
}

// ---------------------------------------------------------------------------------------------
// The bridge.

#[derive(Clone)]
struct Options {
    sealer: StateSealer,
    pkce: bool,
    implicit: bool,
    /// The public URL, when the bridge is one replica behind a shared address.
    public_url: Option<String>,
    /// The vendor ids pinned, if any.
    vendor_ids: Option<Vec<&'static str>>,
    refuse_plain_codes: bool,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sealer: StateSealer::new([key(1)]).unwrap(),
            pkce: false,
            implicit: false,
            public_url: None,
            vendor_ids: None,
            refuse_plain_codes: false,
        }
    }
}

struct Bridge {
    addr: SocketAddr,
}

impl Bridge {
    fn url(&self, path_and_query: &str) -> String {
        format!("http://{}{}", self.addr, path_and_query)
    }

    fn authorize_url(&self, pairs: &[(&str, &str)]) -> String {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        self.url(&format!("/authorize?{query}"))
    }
}

async fn start_bridge(upstream: &FakeUpstream, options: Options) -> Bridge {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let token_upstream = || Upstream::new(upstream.token_url().parse().unwrap());
    let mut builder = AuthorizeRedirect::builder()
        .upstream_authorize_url(upstream.authorize_url())
        .client_id(UPSTREAM_CLIENT_ID)
        .public_url(
            options
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{addr}/")),
        )
        .sealer(options.sealer.clone())
        .upstream_token_url(upstream.token_url())
        .refuse_plain_codes(options.refuse_plain_codes)
        .pkce(options.pkce);
    if let Some(ids) = &options.vendor_ids {
        builder = builder.alexa_vendor_ids(ids.iter().copied());
    }
    if options.implicit {
        builder = builder
            .client_secret("bridge-secret")
            .implicit(TokenExchangeLayer::new(Provider::salesforce()).layer(token_upstream()));
    }
    let authorize = builder.build().unwrap();
    let token =
        TokenExchangeLayer::new(Provider::salesforce().token_request_hook(authorize.code_opener()))
            .layer(token_upstream());
    let app = Router::new()
        .route_service("/authorize", authorize.clone())
        .route_service("/callback", authorize)
        .route_service("/token", token);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Bridge { addr }
}

// ---------------------------------------------------------------------------------------------
// A client that does not follow redirects.

struct Answer {
    status: u16,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> Url {
        assert_eq!(self.status, 302, "expected a redirect, got: {}", self.body);
        let location = self.headers["location"].to_str().unwrap();
        Url::parse(location).unwrap()
    }

    fn assert_refused_without_redirect(&self, reason: &str) {
        assert_eq!(self.status, 400, "{}", self.body);
        assert!(self.headers.get("location").is_none());
        assert_eq!(self.headers["content-type"], "text/html; charset=utf-8");
        assert!(
            self.body.contains(reason),
            "page should say {reason:?}: {}",
            self.body
        );
    }
}

fn client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

async fn send(request: http::Request<Full<Bytes>>) -> Answer {
    let response = client().request(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Answer {
        status: parts.status.as_u16(),
        headers: parts.headers,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

async fn get_url(url: &str) -> Answer {
    send(
        http::Request::get(url)
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await
}

async fn post_form(url: &str, pairs: &[(&str, &str)]) -> Answer {
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    send(
        http::Request::post(url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

fn query_of(url: &Url) -> HashMap<String, String> {
    url.query_pairs().into_owned().collect()
}

fn fragment_of(url: &Url) -> HashMap<String, String> {
    form_urlencoded::parse(url.fragment().unwrap_or("").as_bytes())
        .into_owned()
        .collect()
}

fn alexa_authorize<'a>(extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut pairs = vec![
        ("state", ALEXA_STATE),
        ("redirect_uri", ALEXA_REDIRECT),
        ("client_id", "alexa-skill"),
        ("response_type", "code"),
        ("scope", "api refresh_token"),
    ];
    pairs.extend_from_slice(extra);
    pairs
}

/// Alexa's browser: `/authorize` on `first`, the upstream login, `/callback` on `second`.
/// Returns the upstream authorize URL the bridge chose and the redirect Alexa receives.
async fn browse(first: &Bridge, second: &Bridge, pairs: &[(&str, &str)]) -> (Url, Url) {
    let to_upstream = get_url(&first.authorize_url(pairs)).await.location();
    let back = get_url(to_upstream.as_str()).await.location();
    // Send the callback to the second bridge (same path and query).
    let callback = second.url(&format!("/callback?{}", back.query().unwrap()));
    let answer = get_url(&callback).await;
    assert_eq!(answer.headers["cache-control"], "no-store");
    assert_eq!(answer.headers["referrer-policy"], "no-referrer");
    (to_upstream, answer.location())
}

async fn redeem(bridge: &Bridge, code: &str) -> Answer {
    post_form(
        &bridge.url("/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", ALEXA_REDIRECT),
            ("client_id", "alexa-skill"),
            ("client_secret", "alexa-secret"),
        ],
    )
    .await
}

fn assert_salesforce_token(answer: &Answer) {
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.headers["cache-control"], "no-store");
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    // The fake answers tokens only for codes its authorize endpoint issued.
    support::assert_salesforce_token(&json);
}

// ---------------------------------------------------------------------------------------------
// The flows.

#[tokio::test]
async fn code_flow_links_end_to_end_with_alexas_state_and_a_packed_token() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;

    let (to_upstream, to_alexa) = browse(&bridge, &bridge, &alexa_authorize(&[])).await;

    // What the upstream was asked.
    assert_eq!(
        to_upstream.as_str().split('?').next().unwrap(),
        upstream.authorize_url()
    );
    let asked = query_of(&to_upstream);
    assert_eq!(asked["response_type"], "code");
    assert_eq!(asked["client_id"], UPSTREAM_CLIENT_ID);
    assert_eq!(asked["scope"], "api refresh_token");
    assert_eq!(asked["redirect_uri"], bridge.url("/callback"));
    assert_ne!(asked["state"], ALEXA_STATE);
    assert!(!asked["state"].contains("alexa-state"));
    assert!(!asked.contains_key("code_challenge"));

    // What Alexa gets back: its own redirect URL and state, and a sealed code.
    assert_eq!(to_alexa.as_str().split('?').next().unwrap(), ALEXA_REDIRECT);
    let back = query_of(&to_alexa);
    assert_eq!(back["state"], ALEXA_STATE);
    assert!(!back["code"].contains("aPrxUpstreamCode"));
    assert_eq!(back.len(), 2);

    // Alexa redeems the sealed code at the bridge's token endpoint.
    let answer = redeem(&bridge, &back["code"]).await;
    assert_salesforce_token(&answer);
    let sent = last_token_request(&upstream);
    assert_eq!(sent["code"], "aPrxUpstreamCode0");
    assert_eq!(sent["redirect_uri"], bridge.url("/callback"));
    assert_eq!(sent["client_secret"], "alexa-secret");
    assert!(!sent.contains_key("code_verifier"));
}

#[tokio::test]
async fn alexas_own_pkce_challenge_passes_through_and_its_verifier_is_checked() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let verifier = "alexa-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let mut pairs = alexa_authorize(&[("code_challenge_method", "S256")]);
    pairs.push(("code_challenge", &challenge));

    let (to_upstream, to_alexa) = browse(&bridge, &bridge, &pairs).await;
    let asked = query_of(&to_upstream);
    assert_eq!(asked["code_challenge"], challenge);
    assert_eq!(asked["code_challenge_method"], "S256");
    let code = query_of(&to_alexa)["code"].clone();

    // Without Alexa's verifier the bridge itself refuses, before any upstream call.
    let calls = upstream.calls();
    let refused = redeem(&bridge, &code).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("code_verifier is missing"));
    assert_eq!(upstream.calls(), calls);

    // A fresh flow, redeemed with the verifier.
    let (_, to_alexa) = browse(&bridge, &bridge, &pairs).await;
    let code = query_of(&to_alexa)["code"].clone();
    let answer = post_form(
        &bridge.url("/token"),
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", ALEXA_REDIRECT),
            ("code_verifier", verifier),
            ("client_id", "alexa-skill"),
            ("client_secret", "alexa-secret"),
        ],
    )
    .await;
    assert_salesforce_token(&answer);
    assert_eq!(last_token_request(&upstream)["code_verifier"], verifier);
}

#[tokio::test]
async fn the_bridge_makes_its_own_s256_pair_when_alexa_sends_no_challenge() {
    let upstream = start_upstream().await;
    let options = Options {
        pkce: true,
        ..Options::default()
    };
    let bridge = start_bridge(&upstream, options).await;

    let (to_upstream, to_alexa) = browse(&bridge, &bridge, &alexa_authorize(&[])).await;
    let asked = query_of(&to_upstream);
    assert_eq!(asked["code_challenge_method"], "S256");
    assert_eq!(asked["code_challenge"].len(), 43);

    let answer = redeem(&bridge, &query_of(&to_alexa)["code"]).await;
    assert_salesforce_token(&answer);
    let verifier = last_token_request(&upstream)["code_verifier"].clone();
    assert!((43..=128).contains(&verifier.len()));
    assert!(verifier
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b)));
    assert_eq!(
        URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())),
        asked["code_challenge"]
    );
}

#[tokio::test]
async fn implicit_mode_puts_the_token_in_the_fragment() {
    let upstream = start_upstream().await;
    let options = Options {
        implicit: true,
        pkce: true,
        ..Options::default()
    };
    let bridge = start_bridge(&upstream, options).await;
    let pairs = [
        ("state", ALEXA_STATE),
        ("redirect_uri", ALEXA_REDIRECT),
        ("client_id", "alexa-skill"),
        ("response_type", "token"),
    ];

    let (_, to_alexa) = browse(&bridge, &bridge, &pairs).await;
    assert_eq!(to_alexa.query(), None);
    assert_eq!(to_alexa.as_str().split('#').next().unwrap(), ALEXA_REDIRECT);
    let fragment = fragment_of(&to_alexa);
    assert_eq!(fragment["state"], ALEXA_STATE);
    assert_eq!(fragment["token_type"], "Bearer");
    assert_eq!(fragment["expires_in"], "5400");
    let token = PackedToken::unpack(&fragment["access_token"]).unwrap();
    assert_eq!(token.access_token(), upstream.access_token(1));
    assert_eq!(
        upstream.last().param("code").as_deref(),
        Some("aPrxUpstreamCode0")
    );
    assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));
    // The raw fragment is form-encoded: the `!` of the Salesforce token is escaped.
    assert!(to_alexa.fragment().unwrap().contains("%21"));

    // The bridge redeemed the code itself, with its own credentials and verifier.
    let sent = last_token_request(&upstream);
    assert_eq!(sent["client_id"], UPSTREAM_CLIENT_ID);
    assert_eq!(sent["client_secret"], "bridge-secret");
    assert_eq!(sent["redirect_uri"], bridge.url("/callback"));
    assert!(sent.contains_key("code_verifier"));
}

#[tokio::test]
async fn implicit_mode_relays_a_refused_exchange_in_the_fragment() {
    let upstream = start_upstream().await;
    let options = Options {
        implicit: true,
        ..Options::default()
    };
    let bridge = start_bridge(&upstream, options).await;
    let to_upstream = get_url(&bridge.authorize_url(&[
        ("state", ALEXA_STATE),
        ("redirect_uri", ALEXA_REDIRECT),
        ("response_type", "token"),
    ]))
    .await
    .location();
    let sealed_state = query_of(&to_upstream)["state"].clone();
    // A code the upstream never issued.
    let callback = bridge.url(&format!(
        "/callback?{}",
        form_urlencoded::Serializer::new(String::new())
            .append_pair("code", "forged")
            .append_pair("state", &sealed_state)
            .finish()
    ));
    let to_alexa = get_url(&callback).await.location();
    let fragment = fragment_of(&to_alexa);
    assert_eq!(fragment["error"], "invalid_grant");
    assert_eq!(fragment["state"], ALEXA_STATE);
    assert!(!fragment.contains_key("access_token"));
}

#[tokio::test]
async fn a_second_bridge_sharing_the_key_finishes_a_flow_the_first_began() {
    let upstream = start_upstream().await;
    let first = start_bridge(&upstream, Options::default()).await;
    // Replicas behind one public address: the second bridge's public URL is the first's.
    let second = start_bridge(
        &upstream,
        Options {
            public_url: Some(first.url("")),
            ..Options::default()
        },
    )
    .await;

    let (to_upstream, to_alexa) = browse(&first, &second, &alexa_authorize(&[])).await;
    assert_eq!(
        query_of(&to_upstream)["redirect_uri"],
        first.url("/callback")
    );
    let back = query_of(&to_alexa);
    assert_eq!(back["state"], ALEXA_STATE);
    // The code the second bridge sealed is redeemed at the first.
    assert_salesforce_token(&redeem(&first, &back["code"]).await);
    assert_eq!(
        last_token_request(&upstream)["redirect_uri"],
        first.url("/callback")
    );
}

#[tokio::test]
async fn rotated_keys_still_open_old_state_and_codes() {
    let upstream = start_upstream().await;
    let old = start_bridge(&upstream, Options::default()).await;
    let rotated = start_bridge(
        &upstream,
        Options {
            sealer: StateSealer::new([key(2), key(1)]).unwrap(),
            public_url: Some(old.url("")),
            ..Options::default()
        },
    )
    .await;

    // State sealed under the old key, opened after the rotation.
    let (_, to_alexa) = browse(&old, &rotated, &alexa_authorize(&[])).await;
    assert_eq!(query_of(&to_alexa)["state"], ALEXA_STATE);
    // That code was sealed under the new key: the old-key-only bridge cannot open it...
    let refused = redeem(&old, &query_of(&to_alexa)["code"]).await;
    assert_eq!(refused.status, 400);
    assert!(refused.body.contains("invalid_grant"));
    // ...and a code sealed under the old key opens at the rotated bridge.
    let (_, to_alexa) = browse(&old, &old, &alexa_authorize(&[])).await;
    assert_salesforce_token(&redeem(&rotated, &query_of(&to_alexa)["code"]).await);
}

// ---------------------------------------------------------------------------------------------
// Refusals.

async fn sealed_state_from(bridge: &Bridge) -> String {
    let to_upstream = get_url(&bridge.authorize_url(&alexa_authorize(&[])))
        .await
        .location();
    query_of(&to_upstream)["state"].clone()
}

async fn callback_with_state(bridge: &Bridge, state: &str) -> Answer {
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("code", "aPrxUpstreamCode0")
        .append_pair("state", state)
        .finish();
    get_url(&bridge.url(&format!("/callback?{query}"))).await
}

#[tokio::test]
async fn tampered_expired_foreign_and_oversized_states_are_refused_without_redirect() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let state = sealed_state_from(&bridge).await;

    // Tampered: one character changed in the middle.
    let tampered = support::tamper(&state);
    let answer = callback_with_state(&bridge, &tampered).await;
    answer.assert_refused_without_redirect("altered or sealed with another key");
    assert!(!answer.body.contains(&tampered));

    // Wrong key: a bridge with another key.
    let foreign = start_bridge(
        &upstream,
        Options {
            sealer: StateSealer::new([key(9)]).unwrap(),
            ..Options::default()
        },
    )
    .await;
    callback_with_state(&foreign, &state)
        .await
        .assert_refused_without_redirect("altered or sealed with another key");

    // Expired: a bridge whose states live zero seconds.
    let short = start_bridge(
        &upstream,
        Options {
            sealer: StateSealer::new([key(1)]).unwrap().lifetime(Duration::ZERO),
            public_url: Some(bridge.url("")),
            ..Options::default()
        },
    )
    .await;
    let expired = sealed_state_from(&short).await;
    callback_with_state(&bridge, &expired)
        .await
        .assert_refused_without_redirect("has expired");

    // Oversized, missing, garbage.
    callback_with_state(&bridge, &"A".repeat(3000))
        .await
        .assert_refused_without_redirect("too large");
    get_url(&bridge.url("/callback?code=x"))
        .await
        .assert_refused_without_redirect("state is missing");
    callback_with_state(&bridge, "not-a-sealed-state")
        .await
        .assert_refused_without_redirect("malformed");

    // The genuine state still works.
    let ok = callback_with_state(&bridge, &state).await;
    assert_eq!(query_of(&ok.location())["state"], ALEXA_STATE);
}

#[tokio::test]
async fn a_sealed_state_cannot_be_redeemed_as_a_code() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let state = sealed_state_from(&bridge).await;
    // Dressed as a sealed code (codes the bridge seals start with `alb1.`):
    let answer = redeem(&bridge, &format!("alb1.{state}")).await;
    assert_eq!(answer.status, 400);
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    assert_eq!(json["error"], "invalid_grant");
    assert!(!answer.body.contains(&state));
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn open_redirect_attempts_are_refused_without_redirect() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let attempts = [
        "https://evil.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com.evil.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://evilpitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com@evil.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://evil.com@pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "http://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "//evil.com/api/skill/link/M2AAAAAAAAAAAA",
        "javascript:alert(document.domain)//pitangui.amazon.com/api/skill/link/M2A",
        "https://pitangui.amazon.com/\\evil.com",
        "/\\evil.com",
        "https:/\\evil.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2A%2f..%2f..%2fevil",
        "https://pitangui.amazon.com/api/skill/link/M2A%5cevil.com",
        "https://pitangui.amazon.com%2fevil.com/api/skill/link/M2A",
        "https://pitangui.amazon.com/ /evil.com",
        " https://evil.com/api/skill/link/M2A",
        "https://pitangui.amazon.com/api/skill/link/M2A\n",
        "https://pitangui.amazon.com/api/skill/other/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA/extra",
        "https://pitangui.amazon.com/api/skill/link/",
        "https://pitangui.amazon.com:8443/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com./api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2A?next=https://evil.com",
        "https://pitangui.amazon.com/api/skill/link/M2A#@evil.com",
        "https://layla.amazon.com.evil.com/api/skill/link/M2A",
        "https://alexa.amazon.co.jp.evil.com/api/skill/link/M2A",
        "HTTPS://EVIL.COM/api/skill/link/M2A",
        // Shapes of recent redirect-check bypasses (Keycloak 2024-2026).
        "https://pitangui.amazon.com/api/skill/link/..;/..;/evil",
        "https://a@b@pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/../link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/%2e%2e/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA;jsessionid=x",
        "https://pitangui.amazon.com//api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link//M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api%2fskill%2flink/M2AAAAAAAAAAAA",
        "https://:@pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com:80/api/skill/link/M2AAAAAAAAAAAA",
        "https://pitangui%2eamazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "",
    ];
    for attempt in attempts {
        let url = bridge.authorize_url(&[
            ("state", ALEXA_STATE),
            ("redirect_uri", attempt),
            ("response_type", "code"),
        ]);
        let answer = get_url(&url).await;
        assert_eq!(answer.status, 400, "{attempt:?} was not refused");
        assert!(
            answer.headers.get("location").is_none(),
            "{attempt:?} redirected"
        );
        assert!(answer.body.contains("redirect_uri"), "{attempt:?}");
        assert!(!answer.body.contains("evil"), "{attempt:?} echoed");
    }
    // No redirect_uri at all, and a repeated one.
    get_url(&bridge.url("/authorize?state=s&response_type=code"))
        .await
        .assert_refused_without_redirect("redirect_uri is missing");
    let repeated = bridge.authorize_url(&[
        ("state", "s"),
        ("redirect_uri", ALEXA_REDIRECT),
        ("redirect_uri", "https://evil.com/api/skill/link/M2A"),
    ]);
    get_url(&repeated)
        .await
        .assert_refused_without_redirect("redirect_uri is repeated");
    // The four Alexa hosts pass.
    for host in account_link_bridge::authorize::ALEXA_REDIRECT_HOSTS {
        let redirect = format!("https://{host}/api/skill/link/M2AAAAAAAAAAAA");
        let url = bridge.authorize_url(&[("state", "s"), ("redirect_uri", &redirect)]);
        assert_eq!(get_url(&url).await.status, 302, "{host}");
    }
}

#[tokio::test]
async fn a_missing_state_is_refused_without_redirect() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let url = bridge.authorize_url(&[("redirect_uri", ALEXA_REDIRECT), ("response_type", "code")]);
    get_url(&url)
        .await
        .assert_refused_without_redirect("state is missing");
}

#[tokio::test]
async fn upstream_access_denied_is_relayed_with_alexas_original_state() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let pairs = [
        ("state", ALEXA_STATE),
        ("redirect_uri", ALEXA_REDIRECT),
        ("response_type", "code"),
        ("scope", "deny"),
    ];
    let (_, to_alexa) = browse(&bridge, &bridge, &pairs).await;
    assert_eq!(to_alexa.as_str().split('?').next().unwrap(), ALEXA_REDIRECT);
    let back = query_of(&to_alexa);
    assert_eq!(back["error"], "access_denied");
    assert_eq!(back["error_description"], "end-user denied ?authorization?");
    assert_eq!(back["state"], ALEXA_STATE);
    assert!(!back.contains_key("code"));
}

#[tokio::test]
async fn other_paths_are_not_found_and_other_methods_not_allowed() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    // The router sends only its routes to the service; nest it to see its own 404.
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(upstream.authorize_url())
        .public_url("https://bridge.example.com")
        .build()
        .unwrap();
    let app = Router::new().fallback_service(authorize);
    let addr = support::serve_axum(app).await;
    let answer = get_url(&format!("http://{addr}/elsewhere")).await;
    assert_eq!(answer.status, 404);
    assert!(answer.headers.get("location").is_none());
    let answer = post_form(&bridge.url("/authorize"), &[("state", "s")]).await;
    assert_eq!(answer.status, 405);
    assert_eq!(answer.headers["allow"], "GET, HEAD");
}

// ---------------------------------------------------------------------------------------------
// Alexa's contract today (issue 13) and the hardening (issue 14).

async fn redeem_with(bridge: &Bridge, code: &str, extra: &[(&str, &str)]) -> Answer {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "alexa-skill"),
        ("client_secret", "alexa-secret"),
    ];
    pairs.extend_from_slice(extra);
    post_form(&bridge.url("/token"), &pairs).await
}

fn oauth_error(answer: &Answer) -> String {
    let json: serde_json::Value = serde_json::from_str(&answer.body).unwrap();
    json["error"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_user_sent_through_each_of_alexas_four_hosts_links() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(
        &upstream,
        Options {
            vendor_ids: Some(vec!["M2AAAAAAAAAAAA"]),
            ..Options::default()
        },
    )
    .await;
    for host in account_link_bridge::authorize::ALEXA_REDIRECT_HOSTS {
        let redirect = format!("https://{host}/api/skill/link/M2AAAAAAAAAAAA");
        let pairs = [
            ("state", ALEXA_STATE),
            ("redirect_uri", redirect.as_str()),
            ("response_type", "code"),
            ("client_id", "alexa-skill"),
        ];
        let (_, to_alexa) = browse(&bridge, &bridge, &pairs).await;
        assert_eq!(to_alexa.host_str(), Some(host));
        let code = query_of(&to_alexa)["code"].clone();
        let answer = redeem_with(&bridge, &code, &[("redirect_uri", &redirect)]).await;
        assert_salesforce_token(&answer);
    }
}

#[tokio::test]
async fn with_a_vendor_pin_no_other_skill_can_use_the_bridge() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(
        &upstream,
        Options {
            vendor_ids: Some(vec!["M2AAAAAAAAAAAA", "M3BBBBBBBBBBBB"]),
            ..Options::default()
        },
    )
    .await;
    let attempt = |redirect: &'static str| {
        bridge.authorize_url(&[
            ("state", ALEXA_STATE),
            ("redirect_uri", redirect),
            ("response_type", "code"),
            ("client_id", "alexa-skill"),
        ])
    };
    for other in [
        "https://pitangui.amazon.com/api/skill/link/M2OTHERSKILL00",
        "https://alexa.amazon.com/api/skill/link/m2aaaaaaaaaaaa",
        "https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAA",
    ] {
        get_url(&attempt(other))
            .await
            .assert_refused_without_redirect("an Alexa skill this bridge does not serve");
    }
    for pinned in [
        "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        "https://alexa.amazon.com/api/skill/link/M3BBBBBBBBBBBB",
    ] {
        assert_eq!(get_url(&attempt(pinned)).await.status, 302, "{pinned}");
    }
    assert_eq!(upstream.calls(), 0);
}

#[tokio::test]
async fn implicit_mode_answers_the_status_page_with_its_query_and_the_token_in_the_fragment() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(
        &upstream,
        Options {
            implicit: true,
            vendor_ids: Some(vec!["M2AAAAAAAAAAAA"]),
            ..Options::default()
        },
    )
    .await;
    let page =
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2AAAAAAAAAAAA";
    let pairs = [
        ("state", ALEXA_STATE),
        ("redirect_uri", page),
        ("response_type", "token"),
        ("client_id", "alexa-skill"),
    ];
    let (to_upstream, to_alexa) = browse(&bridge, &bridge, &pairs).await;
    // The bridge's own PKCE toward the upstream, always, in implicit mode.
    assert_eq!(query_of(&to_upstream)["code_challenge_method"], "S256");
    assert!(last_token_request(&upstream).contains_key("code_verifier"));
    assert_eq!(to_alexa.as_str().split('#').next().unwrap(), page);
    assert_eq!(to_alexa.query(), Some("vendorId=M2AAAAAAAAAAAA"));
    let fragment = fragment_of(&to_alexa);
    assert_eq!(fragment["state"], ALEXA_STATE);
    assert!(PackedToken::unpack(&fragment["access_token"]).is_ok());
    // Another skill's page, a second parameter, or the page in another shape: refused.
    for refused in [
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2OTHERSKILL00",
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2AAAAAAAAAAAA&next=x",
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2AAAAAAAAAAAA&vendorId=M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/spa/skill/other.html?vendorId=M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA?vendorId=M2AAAAAAAAAAAA",
    ] {
        let url = bridge.authorize_url(&[("state", "s"), ("redirect_uri", refused)]);
        let answer = get_url(&url).await;
        assert_eq!(answer.status, 400, "{refused}");
        assert!(answer.headers.get("location").is_none(), "{refused}");
    }
}

#[tokio::test]
async fn the_code_grant_refuses_the_implicit_status_page() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let page =
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2AAAAAAAAAAAA";
    get_url(&bridge.authorize_url(&[("state", "s"), ("redirect_uri", page)]))
        .await
        .assert_refused_without_redirect("must not have a query");
}

#[tokio::test]
async fn a_replayed_implicit_state_is_refused_with_a_single_upstream_call() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(
        &upstream,
        Options {
            implicit: true,
            ..Options::default()
        },
    )
    .await;
    let pairs = [
        ("state", ALEXA_STATE),
        ("redirect_uri", ALEXA_REDIRECT),
        ("response_type", "token"),
    ];
    let to_upstream = get_url(&bridge.authorize_url(&pairs)).await.location();
    let back = get_url(to_upstream.as_str()).await.location();
    let callback = bridge.url(&format!("/callback?{}", back.query().unwrap()));
    let first = get_url(&callback).await.location();
    assert!(fragment_of(&first).contains_key("access_token"));
    for _ in 0..4 {
        get_url(&callback)
            .await
            .assert_refused_without_redirect("the state was already used");
    }
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test]
async fn a_state_is_accepted_once_in_code_mode_too() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let state = sealed_state_from(&bridge).await;
    assert_eq!(callback_with_state(&bridge, &state).await.status, 302);
    callback_with_state(&bridge, &state)
        .await
        .assert_refused_without_redirect("the state was already used");
}

/// A flow through a bridge in front of an upstream that ignores PKCE; returns the sealed code.
async fn code_from(bridge: &Bridge, extra: &[(&str, &str)]) -> String {
    let (_, to_alexa) = browse(bridge, bridge, &alexa_authorize(extra)).await;
    query_of(&to_alexa)["code"].clone()
}

#[tokio::test]
async fn the_bridge_checks_alexas_pkce_itself_against_an_upstream_that_ignores_it() {
    let upstream = upstream().ignores_pkce().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let verifier = "alexa-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let with_challenge = [
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    let redirect = ("redirect_uri", ALEXA_REDIRECT);
    // Each refusal is the bridge's own, before any upstream call.
    type Pairs<'a> = &'a [(&'a str, &'a str)];
    let cases: [(Pairs, Pairs, &str); 3] = [
        (&with_challenge, &[redirect], "code_verifier is missing"),
        (
            &with_challenge,
            &[
                redirect,
                ("code_verifier", "not-the-verifier-0123456789-0123456789-01"),
            ],
            "does not match",
        ),
        (
            &[],
            &[redirect, ("code_verifier", verifier)],
            "issued without code_challenge",
        ),
    ];
    for (at_authorize, at_token, says) in cases {
        let code = code_from(&bridge, at_authorize).await;
        let answer = redeem_with(&bridge, &code, at_token).await;
        assert_eq!(answer.status, 400, "{says}: {}", answer.body);
        assert_eq!(oauth_error(&answer), "invalid_grant");
        assert!(answer.body.contains(says), "{says}: {}", answer.body);
        assert_eq!(upstream.calls(), 0, "{says}");
    }
    let code = code_from(&bridge, &with_challenge).await;
    let answer = redeem_with(&bridge, &code, &[redirect, ("code_verifier", verifier)]).await;
    assert_salesforce_token(&answer);
}

#[tokio::test]
async fn plain_challenge_method_goes_back_to_alexa_as_invalid_request() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let pairs = alexa_authorize(&[
        (
            "code_challenge",
            "alexa-verifier-0123456789-0123456789-0123456789",
        ),
        ("code_challenge_method", "plain"),
    ]);
    let to_alexa = get_url(&bridge.authorize_url(&pairs)).await.location();
    assert_eq!(to_alexa.as_str().split('?').next().unwrap(), ALEXA_REDIRECT);
    let back = query_of(&to_alexa);
    assert_eq!(back["error"], "invalid_request");
    assert_eq!(back["state"], ALEXA_STATE);
}

#[tokio::test]
async fn a_sealed_code_without_its_redirect_uri_is_refused() {
    let upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let code = code_from(&bridge, &[]).await;
    let missing = redeem_with(&bridge, &code, &[]).await;
    assert_eq!(missing.status, 400);
    assert_eq!(oauth_error(&missing), "invalid_grant");
    assert!(missing.body.contains("redirect_uri is missing"));
    let other = redeem_with(
        &bridge,
        &code,
        &[(
            "redirect_uri",
            "https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
        )],
    )
    .await;
    assert_eq!(oauth_error(&other), "invalid_grant");
    assert_eq!(upstream.calls(), 0);
    // The same code with its redirect_uri still links.
    assert_salesforce_token(&redeem(&bridge, &code).await);
}

#[tokio::test]
async fn a_seal_from_another_deployment_sharing_the_key_is_refused() {
    let upstream = start_upstream().await;
    let other_upstream = start_upstream().await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    // Same key and public URL, another upstream: another deployment.
    let other = start_bridge(
        &other_upstream,
        Options {
            public_url: Some(bridge.url("")),
            ..Options::default()
        },
    )
    .await;
    let state = sealed_state_from(&bridge).await;
    callback_with_state(&other, &state)
        .await
        .assert_refused_without_redirect("altered or sealed with another key");
    let code = code_from(&bridge, &[]).await;
    let answer = redeem(&other, &code).await;
    assert_eq!(oauth_error(&answer), "invalid_grant");
    assert_eq!(other_upstream.calls(), 0);
}

#[tokio::test]
async fn a_1_5_kb_upstream_code_links_end_to_end() {
    let upstream = upstream().code_padding(1500).await;
    let bridge = start_bridge(
        &upstream,
        Options {
            pkce: true,
            ..Options::default()
        },
    )
    .await;
    let code = code_from(&bridge, &[]).await;
    assert!(code.len() > 2048, "{}", code.len());
    assert!(code.len() <= 4096, "{}", code.len());
    assert_salesforce_token(&redeem(&bridge, &code).await);
    assert!(last_token_request(&upstream)["code"].len() > 1500);
}

#[tokio::test]
async fn an_upstream_code_too_long_to_seal_is_a_server_error_to_alexa() {
    let upstream = upstream().code_padding(3500).await;
    let bridge = start_bridge(&upstream, Options::default()).await;
    let (_, to_alexa) = browse(&bridge, &bridge, &alexa_authorize(&[])).await;
    let back = query_of(&to_alexa);
    assert_eq!(back["error"], "server_error");
    assert_eq!(back["state"], ALEXA_STATE);
    assert!(!back.contains_key("code"));
}

#[tokio::test]
async fn plain_codes_are_refused_only_when_asked() {
    let upstream = start_upstream().await;
    let strict = start_bridge(
        &upstream,
        Options {
            refuse_plain_codes: true,
            ..Options::default()
        },
    )
    .await;
    let answer = redeem(&strict, "aPrxUpstreamCode0").await;
    assert_eq!(oauth_error(&answer), "invalid_grant");
    assert!(answer.body.contains("not issued by this bridge"));
    assert_eq!(upstream.calls(), 0);
    // By default a plain code goes to the upstream, which judges it.
    let lenient = start_bridge(&upstream, Options::default()).await;
    let answer = redeem(&lenient, "aPrxUpstreamCode0").await;
    assert_eq!(oauth_error(&answer), "invalid_grant");
    assert_eq!(upstream.calls(), 1);
}

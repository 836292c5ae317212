//! The bridge against software nobody here wrote: `oidc-provider` (Node), a certified OpenID
//! Connect authorization server, on loopback. Alexa's whole flow: `/authorize` through the
//! middleman with a bridge-made PKCE pair, the real server's login and consent pages, `/callback`,
//! the token exchange and a refresh.
//!
//! Needs Node.js and npm; the first run installs `tests/oidc/node_modules` with `npm ci`.

use testkit as support;
use testkit::oidc::{query, Browser, OidcProvider};

use std::time::Duration;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use account_link_bridge_server::Bridge;

const CLIENT_SECRET: &str = "oidc-client-secret-of-the-test";
const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alexas_whole_flow_links_through_the_bridge_against_oidc_provider() {
    whole_flow(Provider::generic(), true).await;
}

/// oidc-provider requires PKCE (`pkce.required` in server.mjs), as Salesforce External Client
/// Apps can: the Salesforce preset's own PKCE setting, with no `.pkce(true)`, must link.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_salesforce_preset_without_pkce_option_links_against_a_server_requiring_pkce() {
    whole_flow(Provider::salesforce(), false).await;
}

async fn whole_flow(provider: Provider, force_pkce: bool) {
    // Bound first and kept: the bridge's public URL must be known to build it, and
    // oidc-provider needs the callback under it.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge_url = format!("http://{}", listener.local_addr().unwrap());
    let node = OidcProvider::start_for(&listener, CLIENT_SECRET, false).await;
    let oidc = node.issuer().to_string();

    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(format!("{oidc}/auth"))
        .client_id("alexa-bridge")
        .public_url(bridge_url.clone())
        .sealer(StateSealer::random())
        .upstream_token_url(format!("{oidc}/token"))
        .alexa_vendor_ids(["M3BVP74N95SP1F"])
        .pkce(force_pkce || provider.settings().pkce())
        .build()
        .unwrap();
    let bridge = Bridge::with_authorize(
        provider,
        Upstream::new(format!("{oidc}/token").parse().unwrap()).timeout(Duration::from_secs(4)),
        authorize,
    );
    support::serve_service_on(listener, bridge);

    // Alexa's app opens the authorization URI.
    let mut browser = Browser::default();
    let (to_oidc, to_alexa) = browser.link(&bridge_url, "alexa-state-42", ALEXA).await;
    assert!(to_oidc.starts_with(&format!("{oidc}/auth?")), "{to_oidc}");
    assert_eq!(query(&to_oidc)["code_challenge_method"], "S256");
    // The real server's login and consent, then back to the bridge's callback and on to Alexa.
    assert!(to_alexa.starts_with(ALEXA), "{to_alexa}");
    let back = query(&to_alexa);
    assert_eq!(back["state"], "alexa-state-42");

    // Alexa's token request, credentials in the body as the console's second scheme sends them.
    let token_url = format!("{bridge_url}/token");
    let form = ("content-type", "application/x-www-form-urlencoded");
    let exchange = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", back["code"].as_str()),
        ("redirect_uri", ALEXA),
        ("client_id", "alexa-bridge"),
        ("client_secret", CLIENT_SECRET),
    ])
    .unwrap();
    let reply = support::post(&token_url, &[form], exchange.clone()).await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let answer = reply.json();
    assert!(answer["access_token"]
        .as_str()
        .is_some_and(|t| !t.is_empty()));
    assert!(
        answer["expires_in"].as_u64().is_some_and(|s| s >= 360),
        "{answer}"
    );
    assert_eq!(
        answer["token_type"]
            .as_str()
            .map(str::to_ascii_lowercase)
            .as_deref(),
        Some("bearer")
    );
    let refresh_token = answer["refresh_token"]
        .as_str()
        .expect("a refresh token")
        .to_string();
    assert_eq!(reply.header("cache-control"), Some("no-store"));

    // Later, Alexa refreshes, with HTTP Basic this time.
    let refresh = format!("grant_type=refresh_token&refresh_token={refresh_token}");
    let basic = support::basic("alexa-bridge", CLIENT_SECRET);
    let reply = support::post(
        &token_url,
        &[form, ("authorization", basic.as_str())],
        refresh,
    )
    .await;
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    let refreshed = reply.json();
    assert_ne!(refreshed["access_token"], answer["access_token"]);
    assert!(refreshed["refresh_token"].as_str().is_some());

    // A replayed code (the same exchange again) is the real server's verdict: invalid_grant,
    // relayed as it is.
    let reply = support::post(&token_url, &[form], exchange).await;
    assert_eq!(reply.status, 400);
    assert_eq!(reply.oauth_error(), "invalid_grant");
}

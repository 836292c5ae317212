//! testkit's fake upstream judged directly, over loopback, without a bridge: the other tests'
//! assertions on it (`revoked()`, a refused code, a PKCE mismatch) can only fail if the fake
//! really revokes, refuses and checks.

use testkit as support;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};
use support::{post, FakeUpstream, Reply};

const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

async fn exchange(upstream: &FakeUpstream, form: &[(&str, &str)]) -> Reply {
    let body = serde_urlencoded::to_string(form).unwrap();
    post(&upstream.token_url(), &[FORM], body).await
}

async fn refresh(upstream: &FakeUpstream, token: &str) -> Reply {
    exchange(
        upstream,
        &[("grant_type", "refresh_token"), ("refresh_token", token)],
    )
    .await
}

#[tokio::test]
async fn a_strict_rotating_fake_revokes_the_grant_when_a_rotated_out_token_comes_back() {
    let upstream = FakeUpstream::generic()
        .strict()
        .rotate_refresh_tokens()
        .await;
    let r0 = upstream.live_refresh_token();
    let first = refresh(&upstream, &r0).await;
    assert_eq!(first.status, 200);
    let r1 = first.json()["refresh_token"].as_str().unwrap().to_owned();
    assert_eq!(r1, upstream.refresh_token(1));
    assert_ne!(r1, r0);
    assert!(!upstream.revoked());

    let reused = refresh(&upstream, &r0).await;
    assert_eq!(reused.status, 400);
    assert_eq!(reused.json()["error"], "invalid_grant");
    assert!(upstream.revoked());
    // The whole grant is dead: the live token too.
    assert_eq!(
        refresh(&upstream, &r1).await.json()["error"],
        "invalid_grant"
    );
    assert_eq!(upstream.calls(), 3);
}

#[tokio::test]
async fn a_strict_fake_redeems_a_code_once_and_honours_only_its_own_refresh_tokens() {
    let upstream = FakeUpstream::salesforce().strict().await;
    let code = [("grant_type", "authorization_code"), ("code", "c0de")];
    let linked = exchange(&upstream, &code).await;
    assert_eq!(linked.status, 200);
    assert_eq!(
        linked.json()["refresh_token"],
        upstream.refresh_token(1).as_str()
    );
    assert_eq!(
        exchange(&upstream, &code).await.json()["error"],
        "invalid_grant"
    );
    assert!(upstream.revoked());

    let lenient = FakeUpstream::salesforce().await;
    assert_eq!(refresh(&lenient, "any").await.status, 200);
    let strict = FakeUpstream::salesforce().strict().await;
    assert_eq!(
        refresh(&strict, "any").await.json()["error"],
        "invalid_grant"
    );
    let own = refresh(&strict, &strict.live_refresh_token()).await;
    assert_eq!(own.status, 200);
    // Salesforce without rotation answers a refresh without a refresh token.
    assert!(own.json().get("refresh_token").is_none());
}

#[tokio::test]
async fn issued_codes_redeem_only_with_their_redirect_uri_and_pkce_verifier() {
    let upstream = FakeUpstream::salesforce().issued_codes_only().await;
    let verifier = "the-verifier-0123456789-0123456789-0123456789";
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let authorize = |challenge: &str| {
        let query = serde_urlencoded::to_string([
            ("redirect_uri", "https://bridge.example.com/callback"),
            ("state", "s"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ])
        .unwrap();
        let url = format!("{}?{query}", upstream.authorize_url());
        async move {
            let reply =
                support::send(http::Request::get(url).body(Default::default()).unwrap()).await;
            assert_eq!(reply.status, 302);
            let location = url::Url::parse(reply.header("location").unwrap()).unwrap();
            let pairs: std::collections::HashMap<_, _> =
                location.query_pairs().into_owned().collect();
            assert_eq!(pairs["state"], "s");
            pairs["code"].clone()
        }
    };
    let redeem = |code: String, redirect_uri: &'static str, verifier: &'static str| {
        let upstream = upstream.clone();
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", redirect_uri),
                ("code_verifier", verifier),
            ];
            exchange(&upstream, &form).await
        }
    };
    let callback = "https://bridge.example.com/callback";

    let never_issued = redeem("aPrxUpstreamCode9".into(), callback, verifier).await;
    assert_eq!(never_issued.json()["error"], "invalid_grant");
    let code = authorize(&challenge).await;
    let elsewhere = redeem(code, "https://evil.example.com/callback", verifier).await;
    assert_eq!(elsewhere.json()["error"], "invalid_grant");
    let code = authorize(&challenge).await;
    let wrong = redeem(code, callback, "another-verifier-0123456789-0123456789-01").await;
    assert_eq!(wrong.json()["error"], "invalid_grant");
    let code = authorize(&challenge).await;
    let linked = redeem(code.clone(), callback, verifier).await;
    assert_eq!(linked.status, 200, "{:?}", linked.body);
    let again = redeem(code, callback, verifier).await;
    assert_eq!(again.json()["error"], "invalid_grant");
}

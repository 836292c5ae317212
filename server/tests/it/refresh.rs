//! Refresh records (issue 16): no lost, late, repeated or concurrent refresh unlinks a user.
//!
//! Real components only: the bridge over loopback HTTP, a fake upstream that rotates refresh
//! tokens and revokes the grant on reuse (as Salesforce does), a real `redis-server` (started on
//! a loopback port by the tests; `.ci/run` installs it), and oidc-provider with rotation on behind a
//! delaying proxy for the slow and hung-up cases.

use testkit as support;
use testkit::oidc::{query, Browser, OidcProvider};
use testkit::redis::RedisServer;
use testkit::FakeUpstream;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_link_bridge::authorize::{AuthorizeRedirect, StoreNonceCache};
use account_link_bridge::refresh::{MemoryStore, RecordStore, RedisStore, RefreshRecords};
use account_link_bridge::state::{StateKey, StateSealer};
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{FullBody, Provider, TokenExchangeLayer};
use account_link_bridge_server::Bridge;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use proptest::prelude::*;
use tower::{Layer, ServiceExt};

const CLIENT_SECRET: &str = "client-secret-of-the-refresh-tests";
const STATE_KEY: &[u8] = b"the state key both replicas share, 32 bytes+";
const FORM: (&str, &str) = ("content-type", "application/x-www-form-urlencoded");

// ---------------------------------------------------------------------------------------------
// A rotating upstream that revokes on reuse.

/// testkit's fake upstream, judging as a real server does (codes once, only the refresh tokens it
/// issued) and, when `rotate`, rotating refresh tokens and revoking the whole grant when a
/// rotated one comes back, as Salesforce does.
async fn fake_upstream(rotate: bool) -> FakeUpstream {
    let upstream = FakeUpstream::generic()
        .client("alexa", CLIENT_SECRET)
        .strict();
    if rotate {
        upstream.rotate_refresh_tokens().await
    } else {
        upstream.await
    }
}

// ---------------------------------------------------------------------------------------------
// Bridges and Alexa's requests.

fn records(store: impl RecordStore, deadline: Duration) -> RefreshRecords {
    RefreshRecords::new(store)
        .index_key(STATE_KEY)
        .grace(Duration::from_secs(60))
        .answer_deadline(deadline)
}

async fn bridge(upstream: &str, records: RefreshRecords) -> String {
    let upstream = Upstream::new(upstream.parse().unwrap()).timeout(Duration::from_secs(30));
    support::serve_service(Bridge::new(Provider::generic(), upstream).refresh_records(records))
        .await
}

/// Alexa's refresh of `token`, a form with the credentials in the body.
fn refresh_form(token: &str) -> String {
    serde_urlencoded::to_string([
        ("grant_type", "refresh_token"),
        ("refresh_token", token),
        ("client_id", "alexa"),
        ("client_secret", CLIENT_SECRET),
    ])
    .unwrap()
}

/// [`refresh_form`] as a request for a service called in process.
fn refresh_request(token: &str) -> Request<FullBody> {
    Request::post("/token")
        .header(FORM.0, FORM.1)
        .body(FullBody::from(refresh_form(token)))
        .unwrap()
}

async fn refresh(bridge: &str, token: &str) -> support::Reply {
    support::post(&format!("{bridge}/token"), &[FORM], refresh_form(token)).await
}

async fn exchange_code(bridge: &str, code: &str) -> support::Reply {
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code),
        ("client_id", "alexa"),
        ("client_secret", CLIENT_SECRET),
    ])
    .unwrap();
    support::post(&format!("{bridge}/token"), &[FORM], body).await
}

fn refresh_token_of(reply: &support::Reply) -> String {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    reply.json()["refresh_token"].as_str().unwrap().to_string()
}

// ---------------------------------------------------------------------------------------------
// One process, memory store.

#[tokio::test]
async fn a_refresh_repeated_within_the_grace_gets_the_same_answer_with_one_upstream_call() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let r0 = upstream.live_refresh_token();

    let first = refresh(&bridge, &r0).await;
    let r1 = refresh_token_of(&first);
    assert_ne!(r1, r0);
    // Alexa never got it, and retries with R0.
    let again = refresh(&bridge, &r0).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body, first.body);
    assert_eq!(again.header("cache-control"), Some("no-store"));
    assert_eq!(upstream.calls(), 1);
    assert!(!upstream.revoked());

    // The grant is alive: R1 refreshes upstream.
    let next = refresh(&bridge, &r1).await;
    refresh_token_of(&next);
    assert_eq!(upstream.calls(), 2);
    assert!(!upstream.revoked());
}

#[tokio::test]
async fn a_replayed_answer_promises_only_the_lifetime_its_token_has_left() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let r0 = upstream.live_refresh_token();
    let first = refresh(&bridge, &r0).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let again = refresh(&bridge, &r0).await;
    assert_eq!(again.status, 200);
    let (mut first, mut again) = (first.json(), again.json());
    let lifetime = |answer: &serde_json::Value| answer["expires_in"].as_u64().unwrap();
    let aged_by = lifetime(&first) - lifetime(&again);
    assert!((1..=3).contains(&aged_by), "aged by {aged_by} s");
    // Nothing else changes.
    first.as_object_mut().unwrap().remove("expires_in");
    again.as_object_mut().unwrap().remove("expires_in");
    assert_eq!(first, again);
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test]
async fn a_replay_after_the_new_token_was_used_gets_no_tokens_and_the_grant_lives() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let r0 = upstream.live_refresh_token();
    let r1 = refresh_token_of(&refresh(&bridge, &r0).await);
    let r2 = refresh_token_of(&refresh(&bridge, &r1).await);

    // Someone replays R0 after Alexa used R1: no tokens, and no upstream call to revoke on.
    let replay = refresh(&bridge, &r0).await;
    assert_eq!(replay.status, 400);
    assert_eq!(replay.oauth_error(), "invalid_grant");
    assert!(replay.json().get("access_token").is_none());
    assert_eq!(upstream.calls(), 2);
    assert!(!upstream.revoked());
    refresh_token_of(&refresh(&bridge, &r2).await);
}

#[tokio::test]
async fn an_upstream_that_does_not_rotate_is_never_refused_by_the_records() {
    let upstream = fake_upstream(false).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let r0 = upstream.live_refresh_token();
    let first = refresh(&bridge, &r0).await;
    // The response layer echoes R0: no successor.
    assert_eq!(refresh_token_of(&first), r0);
    for _ in 0..3 {
        let again = refresh(&bridge, &r0).await;
        assert_eq!(again.status, 200);
        assert_eq!(again.body, first.body);
    }
    assert_eq!(upstream.calls(), 1);
}

#[tokio::test]
async fn a_repeated_code_exchange_gets_the_same_answer_until_its_refresh_token_is_used() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let first = exchange_code(&bridge, "code-from-the-callback").await;
    let r1 = refresh_token_of(&first);
    let again = exchange_code(&bridge, "code-from-the-callback").await;
    assert_eq!(again.body, first.body);
    assert_eq!(upstream.calls(), 1);

    refresh_token_of(&refresh(&bridge, &r1).await);
    let late = exchange_code(&bridge, "code-from-the-callback").await;
    assert_eq!(late.oauth_error(), "invalid_grant");
    assert_eq!(upstream.calls(), 2);
    assert!(!upstream.revoked());
}

#[tokio::test]
async fn an_upstream_error_is_not_recorded_and_the_next_try_goes_upstream() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    for calls in 1..=2 {
        let reply = refresh(&bridge, "a-token-the-upstream-never-issued").await;
        assert_eq!(reply.oauth_error(), "invalid_grant");
        assert_eq!(upstream.calls(), calls);
    }
}

#[tokio::test]
async fn a_refresh_slower_than_the_deadline_answers_5xx_then_the_retry_gets_the_late_answer() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_millis(300)),
    )
    .await;
    let r0 = upstream.live_refresh_token();
    upstream.set_delay(Duration::from_millis(900));

    let late = refresh(&bridge, &r0).await;
    assert_eq!(late.status, 504);
    assert_eq!(late.oauth_error(), "temporarily_unavailable");
    // Alexa's retry while the call runs waits for it (then its deadline) and is never refused.
    let during = refresh(&bridge, &r0).await;
    assert!(
        during.status == 200 || during.status == 504,
        "{}",
        during.status
    );
    tokio::time::sleep(Duration::from_millis(900)).await;
    upstream.set_delay(Duration::ZERO);
    let retry = refresh(&bridge, &r0).await;
    let r1 = refresh_token_of(&retry);
    assert_eq!(upstream.calls(), 1, "the bridge never calls twice with R0");
    refresh_token_of(&refresh(&bridge, &r1).await);
    assert!(!upstream.revoked());
}

#[tokio::test]
async fn a_client_that_hangs_up_before_the_answer_gets_it_on_its_retry() {
    let upstream = fake_upstream(true).await;
    let bridge = bridge(
        &upstream.token_url(),
        records(MemoryStore::new(), Duration::from_secs(4)),
    )
    .await;
    let r0 = upstream.live_refresh_token();
    upstream.set_delay(Duration::from_millis(600));
    let hung_up = tokio::time::timeout(Duration::from_millis(150), refresh(&bridge, &r0)).await;
    assert!(hung_up.is_err(), "the client gave up before the answer");
    tokio::time::sleep(Duration::from_millis(900)).await;
    upstream.set_delay(Duration::ZERO);
    let retry = refresh(&bridge, &r0).await;
    let r1 = refresh_token_of(&retry);
    assert_eq!(upstream.calls(), 1);
    refresh_token_of(&refresh(&bridge, &r1).await);
    assert!(!upstream.revoked());
}

// ---------------------------------------------------------------------------------------------
// Two replicas sharing one Redis and one state key.

async fn replica(upstream: &FakeUpstream, redis: &RedisServer, deadline: Duration) -> String {
    let store = RedisStore::open(&redis.url()).unwrap();
    bridge(&upstream.token_url(), records(store, deadline)).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_sharing_redis_replay_each_others_records_and_refuse_a_used_ones_replay() {
    let redis = RedisServer::start();
    let upstream = fake_upstream(true).await;
    let a = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let b = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let r0 = upstream.live_refresh_token();

    let first = refresh(&a, &r0).await;
    let r1 = refresh_token_of(&first);
    let on_b = refresh(&b, &r0).await;
    assert_eq!(on_b.body, first.body, "the retry on the other replica");
    assert_eq!(upstream.calls(), 1);

    let r2 = refresh_token_of(&refresh(&b, &r1).await);
    let replay = refresh(&a, &r0).await;
    assert_eq!(replay.oauth_error(), "invalid_grant");
    assert_eq!(upstream.calls(), 2);
    refresh_token_of(&refresh(&a, &r2).await);
    assert!(!upstream.revoked());
}

/// A middleman replica whose used states live in `store` (two replicas share key and URLs).
fn middleman(store: &Arc<dyn RecordStore>) -> AuthorizeRedirect {
    AuthorizeRedirect::builder()
        .upstream_authorize_url("https://login.example.com/services/oauth2/authorize")
        .upstream_token_url("https://login.example.com/services/oauth2/token")
        .client_id("alexa-bridge")
        .public_url("https://bridge.example.com")
        .sealer(StateSealer::new([StateKey::from_secret(STATE_KEY).unwrap()]).unwrap())
        .nonce_cache(StoreNonceCache::new(Arc::clone(store)))
        .build()
        .unwrap()
}

/// `/authorize` on `replica`: the sealed state it sent to the upstream.
async fn sealed_state(replica: &AuthorizeRedirect) -> String {
    let request = Request::get(
        "/authorize?state=alexa-state&response_type=code&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA",
    )
    .body(FullBody::default())
    .unwrap();
    let response = replica.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), 302);
    let location = response.headers()["location"].to_str().unwrap();
    assert!(
        location.starts_with("https://login.example.com/"),
        "{location}"
    );
    query(location)["state"].clone()
}

/// `/callback` on `replica` with `state`: the status and where it sends the browser.
async fn callback(replica: &AuthorizeRedirect, state: &str) -> (u16, String) {
    let request = Request::get(format!("/callback?code=upstream-code&state={state}"))
        .body(FullBody::default())
        .unwrap();
    let response = replica.clone().oneshot(request).await.unwrap();
    let location = response
        .headers()
        .get("location")
        .map(|l| l.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (response.status().as_u16(), location)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_is_accepted_once_across_replicas_sharing_redis_and_a_store_fault_blocks_no_link() {
    let mut redis = RedisServer::start();
    let store: Arc<dyn RecordStore> = Arc::new(RedisStore::open(&redis.url()).unwrap());
    let (a, b) = (middleman(&store), middleman(&store));

    let state = sealed_state(&a).await;
    let (status, location) = callback(&a, &state).await;
    assert_eq!(status, 302);
    assert!(location.starts_with("https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA?"));
    assert!(query(&location).contains_key("code"));
    // The same state replayed on the other replica: refused, no redirect.
    let (status, location) = callback(&b, &state).await;
    assert_eq!((status, location.as_str()), (400, ""));

    // Redis gone: a fresh state still links (its single use goes unchecked this once).
    redis.stop();
    let state = sealed_state(&b).await;
    let (status, location) = callback(&b, &state).await;
    assert_eq!(status, 302);
    assert!(query(&location).contains_key("code"), "{location}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_on_two_replicas_make_one_upstream_call_and_answer_the_same() {
    let redis = RedisServer::start();
    let upstream = fake_upstream(true).await;
    let a = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let b = replica(&upstream, &redis, Duration::from_secs(4)).await;
    upstream.set_delay(Duration::from_millis(200));
    let r0 = upstream.live_refresh_token();

    let (one, two, three, four) = tokio::join!(
        refresh(&a, &r0),
        refresh(&b, &r0),
        refresh(&a, &r0),
        refresh(&b, &r0)
    );
    let replies = [one, two, three, four];
    let first = &replies[0];
    for reply in &replies {
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
        assert_eq!(reply.body, first.body);
    }
    assert_eq!(upstream.calls(), 1);
    upstream.set_delay(Duration::ZERO);
    refresh_token_of(&refresh(&b, &refresh_token_of(first)).await);
    assert!(!upstream.revoked());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_stopped_mid_run_exchanges_go_on_and_nobody_gets_invalid_grant() {
    let mut redis = RedisServer::start();
    let upstream = fake_upstream(true).await;
    let a = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let b = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let r1 = refresh_token_of(&refresh(&a, &upstream.live_refresh_token()).await);

    redis.stop();
    // Each refresh of Alexa's goes upstream as without records, on either replica.
    let r2 = refresh_token_of(&refresh(&b, &r1).await);
    let r3 = refresh_token_of(&refresh(&a, &r2).await);
    let code = exchange_code(&b, "a-code-while-redis-is-down").await;
    assert_eq!(code.status, 200, "{}", String::from_utf8_lossy(&code.body));
    assert_eq!(upstream.calls(), 4);
    assert!(!upstream.revoked());
    assert_ne!(r3, r2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_dump_holds_no_token_code_or_secret() {
    let redis = RedisServer::start();
    let upstream = fake_upstream(true).await;
    let a = replica(&upstream, &redis, Duration::from_secs(4)).await;
    let code = "the-code-alexa-got-from-the-callback";
    let linked = exchange_code(&a, code).await;
    let r1 = refresh_token_of(&linked);
    let refreshed = refresh(&a, &r1).await;
    let r2 = refresh_token_of(&refresh(&a, &r1).await);
    let mut secrets = vec![
        code.to_string(),
        r1.clone(),
        r2,
        CLIENT_SECRET.to_string(),
        String::from_utf8_lossy(STATE_KEY).to_string(),
    ];
    for answer in [&linked, &refreshed] {
        secrets.push(answer.json()["access_token"].as_str().unwrap().to_string());
    }

    let keys = redis.cli(&["--scan"]);
    let keys: Vec<String> = String::from_utf8(keys)
        .unwrap()
        .lines()
        .map(|l| l.trim_matches('"').to_string())
        .collect();
    // The code's record, R1's record and R1's used marker (the claims were released).
    assert_eq!(keys.len(), 3, "{keys:?}");
    let mut dump = keys.join("\n").into_bytes();
    for key in &keys {
        dump.extend(redis.cli(&["GET", key]));
        dump.extend(redis.cli(&["DUMP", key]));
    }
    for secret in &secrets {
        // Any 12 consecutive characters of a secret would be a leak.
        for window in secret.as_bytes().windows(12.min(secret.len())) {
            assert!(
                !dump.windows(window.len()).any(|w| w == window),
                "the dump shows part of a secret"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Against oidc-provider, rotating and revoking on reuse, behind a delaying proxy.

/// A proxy to `target` that waits `delay` before forwarding each request.
async fn delaying_proxy(target: String, delay: Arc<Mutex<Duration>>) -> String {
    let addr = support::serve(move |request: Request<hyper::body::Incoming>| {
        let (target, delay) = (target.clone(), delay.clone());
        async move {
            let (parts, body) = request.into_parts();
            let body = body.collect().await.unwrap().to_bytes();
            let pause = *delay.lock().unwrap();
            tokio::time::sleep(pause).await;
            let mut forward = Request::post(&target);
            for name in ["content-type", "authorization", "accept"] {
                if let Some(value) = parts.headers.get(name) {
                    forward = forward.header(name, value);
                }
            }
            let reply = support::send(forward.body(Full::new(body)).unwrap()).await;
            let mut response = Response::builder().status(reply.status);
            if let Some(value) = reply.headers.get("content-type") {
                response = response.header("content-type", value);
            }
            response.body(Full::new(reply.body)).unwrap()
        }
    })
    .await;
    format!("http://{addr}/token")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn against_oidc_provider_rotating_a_late_refresh_and_a_hang_up_unlink_nobody() {
    const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bridge_url = format!("http://{}", listener.local_addr().unwrap());
    let node = OidcProvider::start_for(&listener, CLIENT_SECRET, true).await;
    let oidc = node.issuer().to_string();
    let delay = Arc::new(Mutex::new(Duration::ZERO));
    let proxy = delaying_proxy(format!("{oidc}/token"), delay.clone()).await;
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(format!("{oidc}/auth"))
        .client_id("alexa-bridge")
        .public_url(bridge_url.clone())
        .sealer(StateSealer::random())
        .pkce(true)
        .build()
        .unwrap();
    let records = RefreshRecords::new(MemoryStore::new())
        .index_key(STATE_KEY)
        .answer_deadline(Duration::from_millis(500));
    let upstream = Upstream::new(proxy.parse().unwrap()).timeout(Duration::from_secs(30));
    let bridge =
        Bridge::with_authorize(Provider::generic(), upstream, authorize).refresh_records(records);
    support::serve_service_on(listener, bridge);

    let mut browser = Browser::default();
    let (_, to_alexa) = browser.link(&bridge_url, "alexa-state", ALEXA).await;
    let code = query(&to_alexa)["code"].clone();

    let token_url = format!("{bridge_url}/token");
    let form = |pairs: &[(&str, &str)]| {
        let mut all = pairs.to_vec();
        all.extend([
            ("client_id", "alexa-bridge"),
            ("client_secret", CLIENT_SECRET),
        ]);
        serde_urlencoded::to_string(all).unwrap()
    };
    let linked = support::post(
        &token_url,
        &[FORM],
        form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", ALEXA),
        ]),
    )
    .await;
    let r1 = refresh_token_of(&linked);

    // 1. A refresh slower than Alexa's deadline: oidc-provider rotates R1 while Alexa hears a
    //    5xx, and Alexa's retry with R1 must not reach it (it would revoke the grant).
    *delay.lock().unwrap() = Duration::from_millis(1500);
    let oidc_refresh =
        |token: &str| form(&[("grant_type", "refresh_token"), ("refresh_token", token)]);
    let late = support::post(&token_url, &[FORM], oidc_refresh(&r1)).await;
    assert!(late.status.is_server_error(), "{}", late.status);
    assert_eq!(late.oauth_error(), "temporarily_unavailable");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    *delay.lock().unwrap() = Duration::ZERO;
    let retry = support::post(&token_url, &[FORM], oidc_refresh(&r1)).await;
    let r2 = refresh_token_of(&retry);
    assert_ne!(r2, r1);

    // 2. Alexa hangs up before the answer.
    *delay.lock().unwrap() = Duration::from_millis(800);
    let hung_up = tokio::time::timeout(
        Duration::from_millis(200),
        support::post(&token_url, &[FORM], oidc_refresh(&r2)),
    )
    .await;
    assert!(hung_up.is_err());
    tokio::time::sleep(Duration::from_millis(1200)).await;
    *delay.lock().unwrap() = Duration::ZERO;
    let retry = support::post(&token_url, &[FORM], oidc_refresh(&r2)).await;
    let r3 = refresh_token_of(&retry);

    // The grant is alive: R3 refreshes at oidc-provider itself.
    let alive = support::post(&token_url, &[FORM], oidc_refresh(&r3)).await;
    let r4 = refresh_token_of(&alive);
    assert_ne!(r4, r3);

    // And oidc-provider does revoke on reuse: R3 again, past its record, straight to the
    // upstream through a second bridge without records, kills the grant (what the records
    // prevent above).
    let plain = support::serve_service(Bridge::new(
        Provider::generic(),
        Upstream::new(format!("{oidc}/token").parse().unwrap()),
    ))
    .await;
    let reuse = support::post(&format!("{plain}/token"), &[FORM], oidc_refresh(&r3)).await;
    assert_eq!(reuse.oauth_error(), "invalid_grant");
    let dead = support::post(&format!("{plain}/token"), &[FORM], oidc_refresh(&r4)).await;
    assert_eq!(dead.oauth_error(), "invalid_grant");
}

// ---------------------------------------------------------------------------------------------
// The record's state machine, as Alexa and a replayer see it (the bridge in process, the
// upstream over loopback).

#[derive(Clone, Debug)]
enum Step {
    /// Alexa refreshes with the token it holds; the answer may be lost on the way back.
    AlexaRefreshes { answer_lost: bool },
    /// Someone presents a token from `back` generations before Alexa's.
    Replay { back: usize },
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => any::<bool>().prop_map(|answer_lost| Step::AlexaRefreshes { answer_lost }),
        1 => (1usize..4).prop_map(|back| Step::Replay { back }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn no_sequence_of_lost_answers_and_replays_unlinks_alexa_or_gives_a_replayer_tokens(
        steps in proptest::collection::vec(step(), 1..12),
    ) {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async move {
            let upstream = fake_upstream(true).await;
            let service = TokenExchangeLayer::new(Provider::generic())
                .refresh_records(records(MemoryStore::new(), Duration::from_secs(4)))
                .layer(Upstream::new(upstream.token_url().parse().unwrap()));
            let ask = |token: String| {
                let service = service.clone();
                async move {
                    let response = service.oneshot(refresh_request(&token)).await.unwrap();
                    let status = response.status();
                    let body = response.into_body().collect().await.unwrap().to_bytes();
                    (status, serde_json::from_slice::<serde_json::Value>(&body).unwrap())
                }
            };
            // The tokens Alexa held, oldest first, and the ones it has presented.
            let mut held = vec![upstream.live_refresh_token()];
            let mut presented: HashSet<String> = HashSet::new();
            for step in steps {
                match step {
                    Step::AlexaRefreshes { answer_lost } => {
                        let token = held.last().unwrap().clone();
                        presented.insert(token.clone());
                        let (status, answer) = ask(token).await;
                        assert_eq!(status, 200, "Alexa's refresh failed: {answer}");
                        if !answer_lost {
                            held.push(answer["refresh_token"].as_str().unwrap().to_string());
                        }
                    }
                    Step::Replay { back } if back < held.len() => {
                        let index = held.len() - 1 - back;
                        let (status, answer) = ask(held[index].clone()).await;
                        if presented.contains(&held[index + 1]) {
                            assert_eq!(answer["error"], "invalid_grant", "a used successor's predecessor got {answer}");
                        } else {
                            assert_eq!(status, 200);
                            assert_eq!(answer["refresh_token"].as_str(), Some(held[index + 1].as_str()));
                        }
                    }
                    Step::Replay { .. } => {}
                }
                assert!(!upstream.revoked(), "the upstream revoked the grant");
            }
            // One upstream call per token presented, whatever was repeated.
            assert_eq!(upstream.calls(), presented.len());
            let (status, _) = ask(held.last().unwrap().clone()).await;
            assert_eq!(status, 200, "the grant is alive at the end");
        });
    }
}

#[tokio::test]
async fn the_exchange_trace_says_what_the_records_did() {
    use account_link_bridge::diagnostics::{ExchangeTrace, Outcome};
    let upstream = fake_upstream(true).await;
    let service = TokenExchangeLayer::new(Provider::generic())
        .refresh_records(records(MemoryStore::new(), Duration::from_secs(4)))
        .layer(Upstream::new(upstream.token_url().parse().unwrap()));
    let trace = |token: String| {
        let service = service.clone();
        async move {
            let response = service.oneshot(refresh_request(&token)).await.unwrap();
            let trace = ExchangeTrace::from_response(&response, Duration::from_millis(1));
            let body = response.into_body().collect().await.unwrap().to_bytes();
            let json: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (trace, json)
        }
    };
    let r0 = upstream.live_refresh_token();
    let (recorded, answer) = trace(r0.clone()).await;
    assert_eq!(recorded.refresh, Some("refresh_recorded"));
    assert_eq!(recorded.outcome, Outcome::Token);
    let (replayed, _) = trace(r0.clone()).await;
    assert_eq!(replayed.refresh, Some("refresh_replayed"));
    assert_eq!(replayed.outcome, Outcome::Token);
    assert_eq!(replayed.upstream_status, None);
    trace(answer["refresh_token"].as_str().unwrap().to_string()).await;
    let (refused, _) = trace(r0).await;
    assert_eq!(refused.refresh, Some("refresh_replay_refused"));
    assert_eq!(refused.outcome, Outcome::Refused);
    assert_eq!(refused.answered_error.as_deref(), Some("invalid_grant"));
    assert_eq!(refused.refresh_store_errors, 0);
}

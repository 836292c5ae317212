//! Each provider preset against testkit's fake of that server, over loopback: an Alexa-like
//! client → the bridge (`TokenExchangeLayer` + `Upstream`, served by axum) → the fake upstream.

use testkit as support;

use std::net::SocketAddr;

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{
    oauth::ClientAuth, provider::AnswerFormat, provider::ErrorMarker, provider::ExpiresIn,
    ErrorCode, Provider, TokenExchangeLayer,
};
use axum::body::Body;
use axum::Router;
use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};
use support::{Answer as UpstreamAnswer, FakeUpstream, Refusal, EXPIRED_CODE, SLACK_BOT_TOKEN};

/// Starts, in front of `upstream`, a bridge for `provider`; returns the bridge's address.
async fn bridge(provider: Provider, upstream: &FakeUpstream) -> SocketAddr {
    let client = Upstream::new(upstream.token_url().parse().unwrap());
    let token_endpoint = tower::ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(provider))
        .service(client);
    support::serve_axum(Router::new().route_service("/token", token_endpoint)).await
}

struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    json: Value,
}

/// POSTs to the bridge as Alexa does (hyper-util's legacy client).
async fn alexa_posts(addr: SocketAddr, basic: Option<&str>, form: &str) -> Answer {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut request = Request::post(format!("http://{addr}/token"))
        .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("user-agent", "Apache-HttpClient/4.5.x (Java/1.8.0_152)");
    if let Some(basic) = basic {
        let encoded = base64::engine::general_purpose::STANDARD.encode(basic);
        request = request.header(AUTHORIZATION, format!("Basic {encoded}"));
    }
    let response = client
        .request(request.body(Body::from(form.to_owned())).unwrap())
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&body)));
    Answer {
        status,
        headers,
        json,
    }
}

const REDIRECT: &str = "https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM3BVP74N95SP1F";

fn code_request(code: &str) -> String {
    format!("grant_type=authorization_code&code={code}&redirect_uri={REDIRECT}&client_id=alexa-client&client_secret=alexa-secret")
}

// ---------------------------------------------------------------------------------------------
// GitHub: form unless `Accept: application/json`; errors with HTTP 200; no expires_in for
// OAuth apps.

/// A GitHub OAuth app (`expiring`: a GitHub App with expiring user tokens) that knows Alexa's
/// client, refuses the code `stale` and the code `redirect` as issued for another redirect_uri.
async fn github_upstream(expiring: bool) -> FakeUpstream {
    let github = FakeUpstream::github()
        .client("alexa-client", "alexa-secret")
        .refuse_code("stale", Refusal::InvalidCode)
        .refuse_code("redirect", Refusal::RedirectMismatch);
    if expiring {
        github.expires_in(28800).await
    } else {
        github.await
    }
}

async fn github_bridge(provider: Provider) -> (SocketAddr, FakeUpstream) {
    let upstream = github_upstream(false).await;
    (bridge(provider, &upstream).await, upstream)
}

#[tokio::test]
async fn github_preset_asks_for_json_and_answers_alexa_with_a_lifetime() {
    let (addr, upstream) = github_bridge(Provider::github()).await;
    let answer = alexa_posts(addr, None, &code_request("good")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["access_token"],
        upstream.access_token(1).as_str()
    );
    // An OAuth app's token does not expire and comes without a refresh token.
    assert!(answer.json.get("refresh_token").is_none());
    assert_eq!(
        answer.json["expires_in"],
        Provider::NON_EXPIRING_DEFAULT_SECS
    );
    assert_eq!(answer.json["token_type"], "bearer");
    assert_eq!(answer.headers["cache-control"], "no-store");
    let seen = upstream.last();
    assert_eq!(seen.headers[ACCEPT], "application/json");
    assert!(seen.headers.get(AUTHORIZATION).is_none());
    assert_eq!(seen.param("client_secret").as_deref(), Some("alexa-secret"));
}

#[tokio::test]
async fn github_form_answers_are_read_when_accept_is_not_json() {
    // Something on the path (or a custom header) stops GitHub from seeing Accept: JSON.
    let provider = Provider::github().extra_header(ACCEPT, HeaderValue::from_static("*/*"));
    // A GitHub App with expiring user tokens.
    let upstream = github_upstream(true).await;
    let addr = bridge(provider, &upstream).await;
    let answer = alexa_posts(addr, None, &code_request("app")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(upstream.last().headers[ACCEPT], "*/*");
    assert_eq!(
        upstream.last().param("code").as_deref(),
        Some("app"),
        "the fake answered a form"
    );
    assert_eq!(
        answer.json["access_token"],
        upstream.access_token(1).as_str()
    );
    // A form's "28800" becomes the integer Alexa needs.
    assert_eq!(answer.json["expires_in"], 28800);
    assert_eq!(
        answer.json["refresh_token"],
        upstream.refresh_token(1).as_str()
    );
}

#[tokio::test]
async fn github_errors_with_http_200_become_rfc_errors_in_json_and_in_form() {
    for accept in ["application/json", "*/*"] {
        let provider =
            Provider::github().extra_header(ACCEPT, HeaderValue::from_str(accept).unwrap());
        let (addr, _) = github_bridge(provider).await;

        let answer = alexa_posts(addr, None, &code_request("stale")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{accept}");
        assert_eq!(answer.json["error"], "invalid_grant", "{accept}");
        assert_eq!(
            answer.json["error_description"],
            "The code passed is incorrect or expired."
        );

        let answer = alexa_posts(addr, None, &code_request("redirect")).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json["error"], "invalid_grant", "{accept}");

        let wrong =
            "grant_type=authorization_code&code=good&client_id=alexa-client&client_secret=nope";
        let answer = alexa_posts(addr, None, wrong).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST);
        assert_eq!(answer.json["error"], "invalid_client", "{accept}");
    }
}

/// The GitHub preset rebuilt from `Provider::generic()` with setters only.
fn custom_github() -> Provider {
    Provider::generic()
        .named("custom-github")
        .client_auth(ClientAuth::Body)
        .extra_header(ACCEPT, HeaderValue::from_static("application/json"))
        .answer_format(AnswerFormat::Either)
        .error_marker(ErrorMarker::Field("error".into()))
        .map_error_code("bad_verification_code", ErrorCode::INVALID_GRANT)
        .map_error_code("bad_refresh_token", ErrorCode::INVALID_GRANT)
        .map_error_code("redirect_uri_mismatch", ErrorCode::INVALID_GRANT)
        .map_error_code("incorrect_client_credentials", ErrorCode::INVALID_CLIENT)
        .map_error_code("unsupported_grant_type", ErrorCode::UNSUPPORTED_GRANT_TYPE)
        .expires_in(ExpiresIn::default_secs(Provider::NON_EXPIRING_DEFAULT_SECS))
}

#[tokio::test]
async fn a_custom_provider_built_with_setters_reproduces_the_github_preset() {
    let requests = [
        code_request("good"),
        code_request("stale"),
        code_request("redirect"),
        "grant_type=authorization_code&code=good&client_id=alexa-client&client_secret=nope"
            .to_owned(),
        "grant_type=password&username=u&password=p".to_owned(),
    ];
    // Against an OAuth app and a GitHub App with expiring tokens.
    for expiring in [false, true] {
        let upstream = github_upstream(expiring).await;
        let preset = bridge(Provider::github(), &upstream).await;
        let custom = bridge(custom_github(), &upstream).await;
        for request in &requests {
            let a = alexa_posts(preset, None, request).await;
            let b = alexa_posts(custom, None, request).await;
            assert_eq!(a.status, b.status, "{request}");
            assert_eq!(a.json, b.json, "{request}");
        }
    }
    // And it is not vacuous: a generic provider answers differently.
    let (generic, _) = github_bridge(Provider::generic()).await;
    let g = alexa_posts(generic, None, &code_request("stale")).await;
    assert_eq!(g.json["error"], "bad_verification_code");
}

// ---------------------------------------------------------------------------------------------
// Slack: `ok:false` with HTTP 200; the user token nested in `authed_user`; HTTP Basic.

/// Slack with Alexa's client (in HTTP Basic), judging as Slack does, rate limiting the code
/// `busy`.
fn slack_upstream() -> support::FakeUpstreamBuilder {
    FakeUpstream::slack()
        .client("alexa-client", "alexa-secret")
        .strict()
        .refuse_code("busy", Refusal::RateLimited)
}

#[tokio::test]
async fn slack_user_token_nested_in_authed_user_is_answered_with_basic_credentials_upstream() {
    let upstream = slack_upstream().await;
    let addr = bridge(Provider::slack(), &upstream).await;
    // Alexa sends the credentials in the body; Slack gets them in HTTP Basic.
    let answer = alexa_posts(addr, None, &code_request("user-only")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["access_token"],
        upstream.access_token(1).as_str()
    );
    assert_eq!(
        answer.json["expires_in"],
        Provider::NON_EXPIRING_DEFAULT_SECS
    );
    let seen = upstream.last();
    assert_eq!(
        seen.basic(),
        Some(("alexa-client".to_owned(), "alexa-secret".to_owned()))
    );
    assert_eq!(seen.param("client_secret"), None);
    assert_eq!(seen.param("code").as_deref(), Some("user-only"));
}

#[tokio::test]
async fn slack_top_level_bot_token_wins_over_the_user_token() {
    let upstream = slack_upstream().bot_token().await;
    let addr = bridge(Provider::slack(), &upstream).await;
    let answer = alexa_posts(addr, None, &code_request("bot")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(answer.json["access_token"], SLACK_BOT_TOKEN);
    assert_ne!(SLACK_BOT_TOKEN, upstream.access_token(1));
}

#[tokio::test]
async fn slack_rotating_user_token_brings_its_lifetime_and_refreshes() {
    let upstream = slack_upstream()
        .expires_in(43200)
        .rotate_refresh_tokens()
        .await;
    let addr = bridge(Provider::slack(), &upstream).await;
    let answer = alexa_posts(
        addr,
        Some("alexa-client:alexa-secret"),
        &format!("grant_type=authorization_code&code=rotating&redirect_uri={REDIRECT}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["access_token"],
        upstream.access_token(1).as_str()
    );
    assert_eq!(answer.json["expires_in"], 43200);
    assert_eq!(
        answer.json["refresh_token"],
        upstream.refresh_token(1).as_str()
    );

    let refreshed = alexa_posts(
        addr,
        Some("alexa-client:alexa-secret"),
        &format!(
            "grant_type=refresh_token&refresh_token={}",
            upstream.refresh_token(1)
        ),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    assert_eq!(
        refreshed.json["access_token"],
        upstream.access_token(2).as_str()
    );
    assert_eq!(
        refreshed.json["refresh_token"],
        upstream.refresh_token(2).as_str()
    );
    assert_ne!(
        refreshed.json["refresh_token"],
        answer.json["refresh_token"]
    );
}

#[tokio::test]
async fn slack_ok_false_with_http_200_becomes_an_rfc_error() {
    let upstream = slack_upstream().await;
    let addr = bridge(Provider::slack(), &upstream).await;
    // The code `used` is redeemed once, so that Slack answers code_already_used below.
    let first = alexa_posts(addr, None, &code_request("used")).await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.json);
    for (request, basic, status, code, description) in [
        (
            code_request("used"),
            None,
            400,
            "invalid_grant",
            "upstream error code_already_used",
        ),
        (
            code_request(EXPIRED_CODE),
            None,
            400,
            "invalid_grant",
            "upstream error invalid_code",
        ),
        (
            code_request("busy"),
            None,
            503,
            "temporarily_unavailable",
            "upstream error ratelimited",
        ),
        (
            "grant_type=refresh_token&refresh_token=revoked".to_owned(),
            Some("alexa-client:alexa-secret"),
            400,
            "invalid_grant",
            "upstream error invalid_refresh_token",
        ),
        (
            "grant_type=authorization_code&code=bot&client_id=alexa-client&client_secret=wrong"
                .to_owned(),
            None,
            400,
            "invalid_client",
            "upstream error bad_client_secret",
        ),
    ] {
        let answer = alexa_posts(addr, basic, &request).await;
        assert_eq!(answer.status.as_u16(), status, "{request}: {}", answer.json);
        assert_eq!(answer.json["error"], code, "{request}");
        assert_eq!(answer.json["error_description"], description, "{request}");
        assert!(answer.json.get("ok").is_none());
    }
}

// ---------------------------------------------------------------------------------------------
// Generic: an Azure AD v1-like upstream with string `expires_in`.

#[tokio::test]
async fn generic_preset_turns_azure_string_expires_in_into_an_integer() {
    // Azure AD v1's answer, which no other provider gives: string lifetimes.
    let azure = json!({
        "token_type": "Bearer", "scope": "user_impersonation",
        "expires_in": "3599", "ext_expires_in": "3599",
        "expires_on": "1586902393", "not_before": "1586898493",
        "resource": "https://graph.windows.net",
        "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln",
        "refresh_token": "0.AAAAXzb9wqs"
    })
    .to_string();
    let upstream = FakeUpstream::generic()
        .answer_with(move |_| {
            Some(UpstreamAnswer {
                status: 200,
                content_type: "application/json; charset=utf-8",
                body: azure.clone(),
            })
        })
        .await;
    let addr = bridge(Provider::generic(), &upstream).await;
    // Alexa's credentials in HTTP Basic; the generic upstream gets them in the body.
    let request = format!("grant_type=authorization_code&code=c&redirect_uri={REDIRECT}");
    let answer = alexa_posts(addr, Some("alexa-client:alexa-secret"), &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["expires_in"], 3599);
    assert!(answer.json["expires_in"].is_u64());
    assert_eq!(answer.json["refresh_token"], "0.AAAAXzb9wqs");
    assert_eq!(answer.json["expires_on"], "1586902393");
    let seen = upstream.last();
    assert_eq!(seen.param("client_id").as_deref(), Some("alexa-client"));
    assert_eq!(seen.param("client_secret").as_deref(), Some("alexa-secret"));
    assert!(seen.headers.get(AUTHORIZATION).is_none());
}

// ---------------------------------------------------------------------------------------------
// Salesforce: no expires_in, instance_url packed, refresh answers without refresh_token.

#[tokio::test]
async fn salesforce_refresh_without_refresh_token_echoes_alexas_and_packs_instance_url() {
    let upstream = FakeUpstream::salesforce().strict().await;
    let addr = bridge(Provider::salesforce(), &upstream).await;
    let linked = alexa_posts(addr, None, &code_request("aPrx")).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.json);
    assert_eq!(linked.json["expires_in"], 5400);
    let issued = upstream.refresh_token(1);
    assert_eq!(linked.json["refresh_token"], issued.as_str());

    let refreshed = alexa_posts(
        addr,
        None,
        &format!("grant_type=refresh_token&refresh_token={issued}&client_id=alexa-client&client_secret=alexa-secret"),
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    assert_eq!(refreshed.json["refresh_token"], issued.as_str());
    assert_eq!(refreshed.json["expires_in"], 5400);
    let token =
        account_link_bridge::PackedToken::unpack(refreshed.json["access_token"].as_str().unwrap())
            .unwrap();
    assert_eq!(token.access_token(), upstream.access_token(2));
    assert!(token.access_token().starts_with("00Dx0000000BV7z!"));
    assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));

    let dead = alexa_posts(
        addr,
        None,
        "grant_type=refresh_token&refresh_token=gone&client_id=alexa-client&client_secret=alexa-secret",
    )
    .await;
    assert_eq!(dead.status, StatusCode::BAD_REQUEST);
    assert_eq!(dead.json["error"], "invalid_grant");
}

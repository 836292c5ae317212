//! Each provider preset against an in-test upstream that behaves like that server, over
//! loopback: an Alexa-like client → the bridge (`TokenExchangeLayer` + `Upstream`, served by
//! axum) → the fake upstream (axum).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{
    oauth::ClientAuth, provider::AnswerFormat, provider::ErrorMarker, provider::ExpiresIn,
    ErrorCode, Provider, TokenExchangeLayer,
};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use base64::Engine;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, StatusCode};
use http_body_util::BodyExt;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::{json, Value};

/// What the fake upstream received.
#[derive(Clone, Debug)]
struct Seen {
    headers: HeaderMap,
    form: Vec<(String, String)>,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn basic(&self) -> Option<(String, String)> {
        let value = self.headers.get(AUTHORIZATION)?.to_str().ok()?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(value.strip_prefix("Basic ")?)
            .ok()?;
        let decoded = String::from_utf8(decoded).ok()?;
        let (id, secret) = decoded.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    }
}

type Log = Arc<Mutex<Vec<Seen>>>;

fn record(log: &Log, headers: &HeaderMap, body: &[u8]) -> Seen {
    let seen = Seen {
        headers: headers.clone(),
        form: form_urlencoded::parse(body).into_owned().collect(),
    };
    log.lock().unwrap().push(seen.clone());
    seen
}

async fn serve(router: Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
    addr
}

/// Starts the fake upstream and, in front of it, a bridge for `provider`; returns the bridge's
/// address and the upstream's log.
async fn bridge(provider: Provider, upstream: Router<Log>, path: &str) -> (SocketAddr, Log) {
    let log = Log::default();
    let upstream_addr = serve(upstream.with_state(log.clone())).await;
    let client = Upstream::new(format!("http://{upstream_addr}{path}").parse().unwrap());
    let token_endpoint = tower::ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(provider))
        .service(client);
    let addr = serve(Router::new().route_service("/token", token_endpoint)).await;
    (addr, log)
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

fn github_answer(headers: &HeaderMap, fields: &[(&str, &str)]) -> Response {
    let wants_json = headers
        .get(ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let object: serde_json::Map<String, Value> = fields
            .iter()
            .map(|(n, v)| ((*n).to_owned(), Value::from(*v)))
            .collect();
        (
            [(CONTENT_TYPE, "application/json; charset=utf-8")],
            Value::Object(object).to_string(),
        )
            .into_response()
    } else {
        let form = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(fields)
            .finish();
        (
            [(
                CONTENT_TYPE,
                "application/x-www-form-urlencoded; charset=utf-8",
            )],
            form,
        )
            .into_response()
    }
}

async fn fake_github(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> Response {
    let seen = record(&log, &headers, &body);
    if seen.param("client_id") != Some("alexa-client")
        || seen.param("client_secret") != Some("alexa-secret")
    {
        return github_answer(
            &headers,
            &[
                ("error", "incorrect_client_credentials"),
                (
                    "error_description",
                    "The client_id and/or client_secret passed are incorrect.",
                ),
            ],
        );
    }
    match seen.param("code") {
        Some("good") => github_answer(
            &headers,
            &[
                ("access_token", "gho_16C7e42F292c6912E7710c838347Ae178B4a"),
                ("scope", "repo,gist"),
                ("token_type", "bearer"),
            ],
        ),
        Some("app") => github_answer(
            &headers,
            &[
                ("access_token", "ghu_16C7e42F292c6912E7710c838347Ae178B4a"),
                ("expires_in", "28800"),
                ("refresh_token", "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1"),
                ("refresh_token_expires_in", "15811200"),
                ("scope", ""),
                ("token_type", "bearer"),
            ],
        ),
        Some("redirect") => github_answer(
            &headers,
            &[
                ("error", "redirect_uri_mismatch"),
                (
                    "error_description",
                    "The redirect_uri MUST match the registered callback URL for this application.",
                ),
            ],
        ),
        _ => github_answer(
            &headers,
            &[
                ("error", "bad_verification_code"),
                ("error_description", "The code passed is incorrect or expired."),
                (
                    "error_uri",
                    "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code",
                ),
            ],
        ),
    }
}

fn github_upstream() -> Router<Log> {
    Router::new().route("/login/oauth/access_token", post(fake_github))
}

async fn github_bridge(provider: Provider) -> (SocketAddr, Log) {
    bridge(provider, github_upstream(), "/login/oauth/access_token").await
}

#[tokio::test]
async fn github_preset_asks_for_json_and_answers_alexa_with_a_lifetime() {
    let (addr, log) = github_bridge(Provider::github()).await;
    let answer = alexa_posts(addr, None, &code_request("good")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(
        answer.json["access_token"],
        "gho_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    assert_eq!(
        answer.json["expires_in"],
        Provider::NON_EXPIRING_DEFAULT_SECS
    );
    assert_eq!(answer.json["token_type"], "bearer");
    assert_eq!(answer.headers["cache-control"], "no-store");
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.headers[ACCEPT], "application/json");
    assert!(seen.headers.get(AUTHORIZATION).is_none());
    assert_eq!(seen.param("client_secret"), Some("alexa-secret"));
}

#[tokio::test]
async fn github_form_answers_are_read_when_accept_is_not_json() {
    // Something on the path (or a custom header) stops GitHub from seeing Accept: JSON.
    let provider = Provider::github().extra_header(ACCEPT, HeaderValue::from_static("*/*"));
    let (addr, log) = github_bridge(provider).await;
    let answer = alexa_posts(addr, None, &code_request("app")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(log.lock().unwrap()[0].headers[ACCEPT], "*/*");
    assert_eq!(
        answer.json["access_token"],
        "ghu_16C7e42F292c6912E7710c838347Ae178B4a"
    );
    // A form's "28800" becomes the integer Alexa needs.
    assert_eq!(answer.json["expires_in"], 28800);
    assert_eq!(
        answer.json["refresh_token"],
        "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1"
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
    let (preset, _) = github_bridge(Provider::github()).await;
    let (custom, _) = github_bridge(custom_github()).await;
    let requests = [
        code_request("good"),
        code_request("app"),
        code_request("stale"),
        code_request("redirect"),
        "grant_type=authorization_code&code=good&client_id=alexa-client&client_secret=nope"
            .to_owned(),
        "grant_type=password&username=u&password=p".to_owned(),
    ];
    for request in &requests {
        let a = alexa_posts(preset, None, request).await;
        let b = alexa_posts(custom, None, request).await;
        assert_eq!(a.status, b.status, "{request}");
        assert_eq!(a.json, b.json, "{request}");
    }
    // And it is not vacuous: a generic provider answers differently.
    let (generic, _) = github_bridge(Provider::generic()).await;
    let g = alexa_posts(generic, None, &code_request("stale")).await;
    assert_eq!(g.json["error"], "bad_verification_code");
}

// ---------------------------------------------------------------------------------------------
// Slack: `ok:false` with HTTP 200; the user token nested in `authed_user`; HTTP Basic.

async fn fake_slack(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> Response {
    let seen = record(&log, &headers, &body);
    let slack = |value: Value| {
        (
            [(CONTENT_TYPE, "application/json; charset=utf-8")],
            value.to_string(),
        )
            .into_response()
    };
    match seen.basic() {
        Some((id, _)) if id != "alexa-client" => {
            return slack(json!({"ok": false, "error": "invalid_client_id"}))
        }
        Some((_, secret)) if secret != "alexa-secret" => {
            return slack(json!({"ok": false, "error": "bad_client_secret"}))
        }
        Some(_) => {}
        None => return slack(json!({"ok": false, "error": "invalid_client_id"})),
    }
    let team = json!({"id": "T9TK3CUKW", "name": "Slack Softball Team"});
    match (
        seen.param("grant_type"),
        seen.param("code"),
        seen.param("refresh_token"),
    ) {
        (Some("authorization_code"), Some("user-only"), _) => slack(json!({
            "ok": true,
            "app_id": "A0KRD7HC3",
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
            "team": team, "enterprise": null, "is_enterprise_install": false
        })),
        (Some("authorization_code"), Some("bot"), _) => slack(json!({
            "ok": true,
            "access_token": "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy",
            "token_type": "bot", "scope": "commands,incoming-webhook",
            "bot_user_id": "U0KRQLJ9H", "app_id": "A0KRD7HC3",
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxp-1234", "token_type": "user"},
            "team": team, "enterprise": null, "is_enterprise_install": false
        })),
        (Some("authorization_code"), Some("rotating"), _) => slack(json!({
            "ok": true, "app_id": "A0KRD7HC3",
            "authed_user": {"id": "U1234", "scope": "chat:write", "access_token": "xoxe.xoxp-1-Mi0y",
                            "token_type": "user", "expires_in": 43200, "refresh_token": "xoxe-1-My0xLTE"},
            "team": team
        })),
        (Some("authorization_code"), Some("used"), _) => {
            slack(json!({"ok": false, "error": "code_already_used"}))
        }
        (Some("authorization_code"), Some("busy"), _) => {
            slack(json!({"ok": false, "error": "ratelimited"}))
        }
        (Some("refresh_token"), _, Some("xoxe-1-My0xLTE")) => slack(json!({
            "ok": true, "app_id": "A0KRD7HC3", "token_type": "user",
            "access_token": "xoxe.xoxp-1-NEW", "expires_in": 43200, "refresh_token": "xoxe-1-NEW"
        })),
        (Some("refresh_token"), _, _) => {
            slack(json!({"ok": false, "error": "invalid_refresh_token"}))
        }
        (Some("authorization_code"), _, _) => slack(json!({"ok": false, "error": "invalid_code"})),
        _ => slack(json!({"ok": false, "error": "invalid_grant_type"})),
    }
}

async fn slack_bridge() -> (SocketAddr, Log) {
    bridge(
        Provider::slack(),
        Router::new().route("/api/oauth.v2.access", post(fake_slack)),
        "/api/oauth.v2.access",
    )
    .await
}

#[tokio::test]
async fn slack_user_token_nested_in_authed_user_is_answered_with_basic_credentials_upstream() {
    let (addr, log) = slack_bridge().await;
    // Alexa sends the credentials in the body; Slack gets them in HTTP Basic.
    let answer = alexa_posts(addr, None, &code_request("user-only")).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["access_token"], "xoxp-1234");
    assert_eq!(
        answer.json["expires_in"],
        Provider::NON_EXPIRING_DEFAULT_SECS
    );
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(
        seen.basic(),
        Some(("alexa-client".to_owned(), "alexa-secret".to_owned()))
    );
    assert_eq!(seen.param("client_secret"), None);
    assert_eq!(seen.param("code"), Some("user-only"));
}

#[tokio::test]
async fn slack_top_level_bot_token_wins_over_the_user_token() {
    let (addr, _) = slack_bridge().await;
    let answer = alexa_posts(addr, None, &code_request("bot")).await;
    assert_eq!(answer.status, StatusCode::OK);
    assert_eq!(
        answer.json["access_token"],
        "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy"
    );
}

#[tokio::test]
async fn slack_rotating_user_token_brings_its_lifetime_and_refreshes() {
    let (addr, _) = slack_bridge().await;
    let answer = alexa_posts(
        addr,
        Some("alexa-client:alexa-secret"),
        &format!("grant_type=authorization_code&code=rotating&redirect_uri={REDIRECT}"),
    )
    .await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["access_token"], "xoxe.xoxp-1-Mi0y");
    assert_eq!(answer.json["expires_in"], 43200);
    assert_eq!(answer.json["refresh_token"], "xoxe-1-My0xLTE");

    let refreshed = alexa_posts(
        addr,
        Some("alexa-client:alexa-secret"),
        "grant_type=refresh_token&refresh_token=xoxe-1-My0xLTE",
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    assert_eq!(refreshed.json["access_token"], "xoxe.xoxp-1-NEW");
    assert_eq!(refreshed.json["refresh_token"], "xoxe-1-NEW");
}

#[tokio::test]
async fn slack_ok_false_with_http_200_becomes_an_rfc_error() {
    let (addr, _) = slack_bridge().await;
    for (request, basic, status, code, description) in [
        (
            code_request("used"),
            None,
            400,
            "invalid_grant",
            "upstream error code_already_used",
        ),
        (
            code_request("nope"),
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

async fn fake_azure_v1(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> Response {
    record(&log, &headers, &body);
    (
        [(CONTENT_TYPE, "application/json; charset=utf-8")],
        json!({
            "token_type": "Bearer", "scope": "user_impersonation",
            "expires_in": "3599", "ext_expires_in": "3599",
            "expires_on": "1586902393", "not_before": "1586898493",
            "resource": "https://graph.windows.net",
            "access_token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.e30.c2ln",
            "refresh_token": "0.AAAAXzb9wqs"
        })
        .to_string(),
    )
        .into_response()
}

#[tokio::test]
async fn generic_preset_turns_azure_string_expires_in_into_an_integer() {
    let (addr, log) = bridge(
        Provider::generic(),
        Router::new().route("/common/oauth2/token", post(fake_azure_v1)),
        "/common/oauth2/token",
    )
    .await;
    // Alexa's credentials in HTTP Basic; the generic upstream gets them in the body.
    let request = format!("grant_type=authorization_code&code=c&redirect_uri={REDIRECT}");
    let answer = alexa_posts(addr, Some("alexa-client:alexa-secret"), &request).await;
    assert_eq!(answer.status, StatusCode::OK, "{}", answer.json);
    assert_eq!(answer.json["expires_in"], 3599);
    assert!(answer.json["expires_in"].is_u64());
    assert_eq!(answer.json["refresh_token"], "0.AAAAXzb9wqs");
    assert_eq!(answer.json["expires_on"], "1586902393");
    let seen = log.lock().unwrap()[0].clone();
    assert_eq!(seen.param("client_id"), Some("alexa-client"));
    assert_eq!(seen.param("client_secret"), Some("alexa-secret"));
    assert!(seen.headers.get(AUTHORIZATION).is_none());
}

// ---------------------------------------------------------------------------------------------
// Salesforce: no expires_in, instance_url packed, refresh answers without refresh_token.

async fn fake_salesforce(State(log): State<Log>, headers: HeaderMap, body: Bytes) -> Response {
    let seen = record(&log, &headers, &body);
    let json_answer = |status: StatusCode, value: Value| {
        (
            status,
            [(CONTENT_TYPE, "application/json;charset=UTF-8")],
            value.to_string(),
        )
            .into_response()
    };
    let base = json!({
        "access_token": "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs",
        "instance_url": "https://yourInstance.salesforce.com",
        "id": "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P",
        "token_type": "Bearer",
        "issued_at": "1278448101416",
        "signature": "CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=",
        "scope": "id api refresh_token"
    });
    match (seen.param("grant_type"), seen.param("refresh_token")) {
        (Some("refresh_token"), Some("5Aep861TSESvWeug_xvFHRBTTbf")) => {
            json_answer(StatusCode::OK, base)
        }
        (Some("refresh_token"), _) => json_answer(
            StatusCode::BAD_REQUEST,
            json!({"error": "invalid_grant", "error_description": "expired access/refresh token"}),
        ),
        _ => {
            let mut answer = base;
            answer["refresh_token"] = "5Aep861TSESvWeug_xvFHRBTTbf".into();
            json_answer(StatusCode::OK, answer)
        }
    }
}

#[tokio::test]
async fn salesforce_refresh_without_refresh_token_echoes_alexas_and_packs_instance_url() {
    let (addr, _) = bridge(
        Provider::salesforce(),
        Router::new().route("/services/oauth2/token", post(fake_salesforce)),
        "/services/oauth2/token",
    )
    .await;
    let linked = alexa_posts(addr, None, &code_request("aPrx")).await;
    assert_eq!(linked.status, StatusCode::OK, "{}", linked.json);
    assert_eq!(linked.json["expires_in"], 5400);
    assert_eq!(linked.json["refresh_token"], "5Aep861TSESvWeug_xvFHRBTTbf");

    let refreshed = alexa_posts(
        addr,
        None,
        "grant_type=refresh_token&refresh_token=5Aep861TSESvWeug_xvFHRBTTbf&client_id=alexa-client&client_secret=alexa-secret",
    )
    .await;
    assert_eq!(refreshed.status, StatusCode::OK, "{}", refreshed.json);
    assert_eq!(
        refreshed.json["refresh_token"],
        "5Aep861TSESvWeug_xvFHRBTTbf"
    );
    assert_eq!(refreshed.json["expires_in"], 5400);
    let token =
        account_link_bridge::PackedToken::unpack(refreshed.json["access_token"].as_str().unwrap())
            .unwrap();
    assert!(token.access_token().starts_with("00Dx0000000BV7z!"));
    assert_eq!(
        token.instance_url(),
        Some("https://yourInstance.salesforce.com")
    );

    let dead = alexa_posts(
        addr,
        None,
        "grant_type=refresh_token&refresh_token=gone&client_id=alexa-client&client_secret=alexa-secret",
    )
    .await;
    assert_eq!(dead.status, StatusCode::BAD_REQUEST);
    assert_eq!(dead.json["error"], "invalid_grant");
}

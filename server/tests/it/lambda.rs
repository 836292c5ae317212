//! The bridge as an AWS Lambda function: real event payloads (API Gateway HTTP API v2, REST API
//! v1 with a stage, Lambda Function URL) turned into requests by `lambda_http`'s own conversion,
//! answered by [`LambdaService`] over the bridge, in front of a Salesforce-like upstream on
//! loopback. The answers are read as Alexa reads them.
#![cfg(feature = "lambda")]

use testkit as support;

use std::time::Duration;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::lambda::LambdaService;
use account_link_bridge::state::{StateKey, StateSealer};
use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use account_link_bridge_server::Bridge;
use http::Response;
use lambda_http::Body;
use support::FakeUpstream;
use tower::ServiceExt;
use url::Url;

const FUNCTION_URL: &str = "https://w3xyzq5abcdefgh7ijklmnop2q0rstuv.lambda-url.us-east-1.on.aws";
const UPSTREAM_CLIENT_ID: &str = "3MVG9-bridge-app";

/// The function as `bridge-lambda` builds it: the bridge with the authorization
/// middleman, in front of `upstream`.
fn function(upstream: &FakeUpstream) -> LambdaService<Bridge> {
    let token =
        Upstream::new(upstream.token_url().parse().unwrap()).timeout(Duration::from_secs(2));
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(format!(
            "http://{}/services/oauth2/authorize",
            upstream.addr
        ))
        .client_id(UPSTREAM_CLIENT_ID)
        .public_url(FUNCTION_URL)
        .sealer(StateSealer::new([StateKey::from_bytes([7; 32])]).unwrap())
        .build()
        .unwrap();
    LambdaService::new(Bridge::with_authorize(
        Provider::salesforce(),
        token,
        authorize,
    ))
}

/// Converts the event as the Lambda runtime does, and answers it.
async fn invoke(upstream: &FakeUpstream, event: &str) -> Response<Body> {
    let request = lambda_http::request::from_str(event).expect("a valid Lambda event");
    function(upstream).oneshot(request).await.unwrap()
}

fn header<'a>(response: &'a Response<Body>, name: &str) -> Option<&'a str> {
    response.headers().get(name).map(|v| v.to_str().unwrap())
}

/// The JSON answer as Alexa reads it, after the checks every token answer must pass.
fn alexa_json(response: &Response<Body>) -> serde_json::Value {
    assert_eq!(
        header(response, "content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(header(response, "cache-control"), Some("no-store"));
    let Body::Text(json) = response.body() else {
        panic!(
            "a JSON answer is handed to Lambda as text: {:?}",
            response.body()
        );
    };
    serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"))
}

#[tokio::test]
async fn http_api_base64_form_code_exchange_answers_alexa_a_packed_token() {
    let upstream = FakeUpstream::salesforce().await;

    let response = invoke(
        &upstream,
        include_str!("fixtures/lambda/http-api-v2-token-code-form-base64.json"),
    )
    .await;

    assert_eq!(response.status(), 200, "{:?}", response.body());
    support::assert_salesforce_token(&alexa_json(&response));
    let seen = upstream.last();
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(
        seen.param("grant_type").as_deref(),
        Some("authorization_code")
    );
    assert_eq!(
        seen.param("code").as_deref(),
        Some("aPrxsmIEeqM9PiQroGEWx1UiMQ")
    );
    assert_eq!(
        seen.param("redirect_uri").as_deref(),
        Some("https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA")
    );
    // Alexa's Basic credentials, moved into the body for Salesforce.
    assert_eq!(seen.param("client_id").as_deref(), Some("alexa-skill"));
    assert_eq!(
        seen.param("client_secret").as_deref(),
        Some("alexa-skill-secret")
    );
    assert_eq!(seen.header("authorization"), None);
}

#[tokio::test]
async fn rest_api_json_without_content_type_under_a_stage_prefix_is_exchanged() {
    let upstream = FakeUpstream::salesforce().await;
    let event = include_str!("fixtures/lambda/rest-api-v1-token-code-json-no-content-type.json");
    let request = lambda_http::request::from_str(event).unwrap();
    assert_eq!(request.uri().path(), "/prod/token");
    assert_eq!(request.headers().get("content-type"), None);

    let response = function(&upstream).oneshot(request).await.unwrap();

    assert_eq!(response.status(), 200, "{:?}", response.body());
    support::assert_salesforce_token(&alexa_json(&response));
    let seen = upstream.last();
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM3BVP74N95SP1F&client_id=alexa-skill&client_secret=alexa-skill-secret"
    );
}

#[tokio::test]
async fn function_url_refresh_gets_expires_in_and_the_refresh_token_echoed() {
    let upstream = FakeUpstream::salesforce().await;

    let response = invoke(
        &upstream,
        include_str!("fixtures/lambda/function-url-token-refresh-form-base64.json"),
    )
    .await;

    assert_eq!(response.status(), 200, "{:?}", response.body());
    // Salesforce answers a refresh without refresh_token: the one Alexa sent comes back.
    support::assert_salesforce_token(&alexa_json(&response));
    let seen = upstream.last();
    assert_eq!(seen.param("grant_type").as_deref(), Some("refresh_token"));
    assert_eq!(
        seen.param("refresh_token").as_deref(),
        Some("5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrbU1Q")
    );
}

#[tokio::test]
async fn a_refresh_whose_answer_was_lost_is_answered_again_by_the_function_without_a_second_upstream_call(
) {
    use account_link_bridge::refresh::{MemoryStore, RefreshRecords};

    let upstream = FakeUpstream::salesforce().await;
    // One warm instance, with the records as `bridge-lambda` makes them by default (memory).
    let instance = LambdaService::new(
        function(&upstream)
            .into_inner()
            .refresh_records(RefreshRecords::new(MemoryStore::new())),
    );
    let event = include_str!("fixtures/lambda/function-url-token-refresh-form-base64.json");
    let mut answers = Vec::new();
    for _ in 0..2 {
        let request = lambda_http::request::from_str(event).unwrap();
        let response = instance.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), 200);
        answers.push(alexa_json(&response));
    }
    // Alexa's retry (the first answer lost on the way) gets the same tokens; the upstream was
    // asked once.
    assert_eq!(answers[0], answers[1]);
    assert_eq!(upstream.seen().len(), 1);
}

#[tokio::test]
async fn a_bad_token_request_is_answered_400_json_and_never_reaches_upstream() {
    let upstream = FakeUpstream::salesforce().await;

    let response = invoke(
        &upstream,
        include_str!("fixtures/lambda/function-url-token-two-codes.json"),
    )
    .await;

    assert_eq!(response.status(), 400);
    let answer = alexa_json(&response);
    assert_eq!(answer["error"], "invalid_request");
    assert!(answer.get("access_token").is_none());
    assert!(upstream.seen().is_empty(), "the upstream saw a request");
}

#[tokio::test]
async fn function_url_authorize_redirects_to_the_upstream_with_a_sealed_state() {
    let upstream = FakeUpstream::salesforce().await;

    let response = invoke(
        &upstream,
        include_str!("fixtures/lambda/function-url-authorize.json"),
    )
    .await;

    assert_eq!(response.status(), 302, "{:?}", response.body());
    assert_eq!(header(&response, "cache-control"), Some("no-store"));
    let location = Url::parse(header(&response, "location").expect("a Location")).unwrap();
    assert_eq!(
        location.as_str().split('?').next(),
        Some(format!("http://{}/services/oauth2/authorize", upstream.addr).as_str())
    );
    let query: std::collections::HashMap<_, _> = location.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], UPSTREAM_CLIENT_ID);
    assert_eq!(query["response_type"], "code");
    assert_eq!(query["redirect_uri"], format!("{FUNCTION_URL}/callback"));
    assert_eq!(query["scope"], "api refresh_token");
    assert_ne!(query["state"], "A2SAAEAEKd0RjGm5Zr8Tk9w");
    assert!(query["state"].len() > 40, "the state is sealed");
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn a_get_on_the_token_route_is_405_json() {
    let upstream = FakeUpstream::salesforce().await;
    let event = include_str!("fixtures/lambda/function-url-authorize.json")
        .replace(r#""rawPath": "/authorize""#, r#""rawPath": "/token""#);

    let response = invoke(&upstream, &event).await;

    assert_eq!(response.status(), 405);
    assert_eq!(header(&response, "allow"), Some("POST"));
    assert_eq!(alexa_json(&response)["error"], "invalid_request");
}

/// The whole serving path of `bridge-lambda`: `lambda_http::run` polls a Runtime API on
/// loopback for the event and posts the function's answer back; what it posts is what API
/// Gateway turns into the HTTP answer Alexa reads.
#[tokio::test]
async fn the_lambda_runtime_posts_alexa_s_answer_back_to_the_runtime_api() {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    let upstream = FakeUpstream::salesforce().await;
    let event = include_str!("fixtures/lambda/http-api-v2-token-code-form-base64.json");
    let (posted, answer) = tokio::sync::oneshot::channel::<(String, Bytes)>();
    let posted = Arc::new(Mutex::new(Some(posted)));
    let handed_out = Arc::new(Mutex::new(false));
    let runtime_api = support::serve(move |request: http::Request<hyper::body::Incoming>| {
        let posted = posted.clone();
        let handed_out = handed_out.clone();
        async move {
            let path = request.uri().path().to_string();
            if path == "/2018-06-01/runtime/invocation/next" {
                if std::mem::replace(&mut *handed_out.lock().unwrap(), true) {
                    // One event only: later polls wait until the test ends.
                    std::future::pending::<()>().await;
                }
                let deadline = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_millis()
                    + 30_000;
                return Response::builder()
                    .header(
                        "lambda-runtime-aws-request-id",
                        "8476a536-e9f4-11e8-9739-2dfe598c3fcd",
                    )
                    .header("lambda-runtime-deadline-ms", deadline.to_string())
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:account-link-bridge",
                    )
                    .header(
                        "lambda-runtime-trace-id",
                        "Root=1-6650a3c1-4f1d2c3b5a6e7f8091a2b3c4",
                    )
                    .body(Full::new(Bytes::from_static(event.as_bytes())))
                    .unwrap();
            }
            let body = request.into_body().collect().await.unwrap().to_bytes();
            if let Some(posted) = posted.lock().unwrap().take() {
                let _ = posted.send((path, body));
            }
            Response::builder()
                .status(202)
                .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
                .unwrap()
        }
    })
    .await;
    // What Lambda sets for a custom runtime; every test in this process sets the same values.
    for (name, value) in [
        ("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string()),
        ("AWS_LAMBDA_FUNCTION_NAME", "account-link-bridge".into()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        (
            "AWS_LAMBDA_LOG_STREAM_NAME",
            "2024/05/24/[$LATEST]0123456789abcdef".into(),
        ),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            "/aws/lambda/account-link-bridge".into(),
        ),
    ] {
        std::env::set_var(name, value);
    }

    // `lambda_http::run`'s future is not `Send`: it runs on this thread, as in the example.
    let local = tokio::task::LocalSet::new();
    let answer = local
        .run_until(async {
            let runtime = tokio::task::spawn_local(lambda_http::run(function(&upstream)));
            let answer = tokio::time::timeout(Duration::from_secs(10), answer).await;
            runtime.abort();
            answer
        })
        .await;

    let (path, body) = answer.expect("the runtime posted an answer").unwrap();
    assert_eq!(
        path,
        "/2018-06-01/runtime/invocation/8476a536-e9f4-11e8-9739-2dfe598c3fcd/response"
    );
    let posted: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(posted["statusCode"], 200, "{posted}");
    assert_eq!(posted["isBase64Encoded"], false);
    assert_eq!(
        posted["headers"]["content-type"],
        "application/json;charset=UTF-8"
    );
    assert_eq!(posted["headers"]["cache-control"], "no-store");
    let answer: serde_json::Value =
        serde_json::from_str(posted["body"].as_str().expect("a text body")).unwrap();
    support::assert_salesforce_token(&answer);
}

/// The `bridge-lambda` binary as Lambda runs it (a process polling a Runtime API on loopback), logging
/// at TRACE with a more specific directive for the module that logs the raw event: the event's
/// client secret and code appear nowhere in its logs, while the exchange is answered.
#[tokio::test(flavor = "multi_thread")]
async fn lambda_logs_at_trace_never_carry_the_event_s_secrets() {
    use std::sync::{Arc, Mutex};

    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};

    const SECRET: &str = "SENTINEL-client-secret-7f3a";
    const CODE: &str = "SENTINEL-code-91c2";
    let upstream = FakeUpstream::salesforce().await;
    let event = include_str!("fixtures/lambda/rest-api-v1-token-code-json-no-content-type.json")
        .replace("alexa-skill-secret", SECRET)
        .replace("SplxlOBeZQQYbYS6WxSbIA", CODE);
    assert!(event.contains(SECRET) && event.contains(CODE));
    let (posted, answer) = tokio::sync::oneshot::channel::<Bytes>();
    let posted = Arc::new(Mutex::new(Some(posted)));
    let handed_out = Arc::new(Mutex::new(false));
    let runtime_api = support::serve(move |request: http::Request<hyper::body::Incoming>| {
        let (posted, handed_out, event) = (posted.clone(), handed_out.clone(), event.clone());
        async move {
            if request.uri().path() == "/2018-06-01/runtime/invocation/next" {
                if std::mem::replace(&mut *handed_out.lock().unwrap(), true) {
                    std::future::pending::<()>().await;
                }
                return Response::builder()
                    .header("lambda-runtime-aws-request-id", "sentinel-request-1")
                    .header("lambda-runtime-deadline-ms", "4102444800000")
                    .header(
                        "lambda-runtime-invoked-function-arn",
                        "arn:aws:lambda:us-east-1:123456789012:function:account-link-bridge",
                    )
                    .body(Full::new(Bytes::from(event)))
                    .unwrap();
            }
            let body = request.into_body().collect().await.unwrap().to_bytes();
            if let Some(posted) = posted.lock().unwrap().take() {
                let _ = posted.send(body);
            }
            Response::builder()
                .status(202)
                .body(Full::new(Bytes::from_static(br#"{"status":"OK"}"#)))
                .unwrap()
        }
    })
    .await;

    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bridge-lambda"))
        .env_clear()
        .env(
            "RUST_LOG",
            "trace,lambda_runtime=trace,lambda_runtime::layers::api_response=trace,lambda_http=trace",
        )
        .env("AWS_LAMBDA_RUNTIME_API", runtime_api.to_string())
        .env("AWS_LAMBDA_FUNCTION_NAME", "account-link-bridge")
        .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
        .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
        .env("AWS_LAMBDA_LOG_STREAM_NAME", "2024/05/24/[$LATEST]0123")
        .env("AWS_LAMBDA_LOG_GROUP_NAME", "/aws/lambda/account-link-bridge")
        .env("BRIDGE_UPSTREAM_TOKEN_URL", upstream.token_url())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let posted = tokio::time::timeout(Duration::from_secs(20), answer).await;
    let _ = child.kill();
    let output = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&output.stderr).into_owned()
        + &String::from_utf8_lossy(&output.stdout);

    let posted = posted.expect("the function answered").unwrap();
    let posted: serde_json::Value = serde_json::from_slice(&posted).unwrap();
    assert_eq!(posted["statusCode"], 200, "{posted}");
    assert_eq!(
        upstream.last().param("client_secret").as_deref(),
        Some(SECRET)
    );
    // The logs are at TRACE indeed (the guard is not a quiet subscriber).
    assert!(logs.contains("TRACE"), "{logs}");
    for sentinel in [SECRET, CODE] {
        assert!(!logs.contains(sentinel), "{sentinel} logged:\n{logs}");
    }
}

#[test]
fn the_lambda_function_refuses_a_plain_http_upstream_that_is_not_loopback() {
    let run = |extra: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bridge-lambda"));
        command
            .env_clear()
            .env(
                "BRIDGE_UPSTREAM_TOKEN_URL",
                "http://login.example.com/services/oauth2/token",
            )
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
        for (name, value) in extra {
            command.env(name, value);
        }
        command.output().unwrap()
    };
    let refused = run(&[]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--allow-insecure-upstream"), "{stderr}");
    assert!(stderr.contains("plain http"), "{stderr}");
}

#[test]
fn the_lambda_function_refuses_a_metrics_listener_it_cannot_have() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bridge-lambda"))
        .env_clear()
        .env(
            "BRIDGE_UPSTREAM_TOKEN_URL",
            "https://login.example.com/services/oauth2/token",
        )
        .env("BRIDGE_METRICS_LISTEN", "127.0.0.1:9090")
        .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("BRIDGE_METRICS_LISTEN"), "{stderr}");
    assert!(stderr.contains("no meaning on Lambda"), "{stderr}");
}

//! The skill side: Alexa request envelopes, the not-linked answers, and the axum extractor.

use account_link_bridge::skill::{
    link_account_response, AlexaRequest, EnvelopeError, NotLinked, RequestKind, SmartHomeErrorType,
};
use account_link_bridge::{pack::PackFormat, pack::UnpackError};
use serde_json::{json, Value};

const SALESFORCE_TOKEN: &str = "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs https://yourInstance.salesforce.com";

/// A custom skill IntentRequest as Alexa sends it (request and response JSON reference).
fn intent_request(access_token: Option<&str>) -> Value {
    let mut user = json!({"userId": "amzn1.ask.account.AGF7EUF4RNORLHSZDNU7KR7W75A2GRGQPT6OMHLBACZBLFKZTA2SPNW2UR527IFJRSPTPMMG5F2J64FH67DWLVUYNRDO5IOLQ2OSS6ZQRMEFLAVLTKGAIZKCLTYOIQJTAYNZKIIF3ZD6YRHUXQHHB4EOXT4QHOLZK4MFJYNDMRV6B4NCKDY4QIGRQZHPXCRW2BRHDF3E6ISQIPI"});
    if let Some(token) = access_token {
        user["accessToken"] = token.into();
    }
    json!({
        "version": "1.0",
        "session": {
            "new": false,
            "sessionId": "amzn1.echo-api.session.0000-1111",
            "application": {"applicationId": "amzn1.ask.skill.12345678-abcd-1234-abcd-123456789012"},
            "attributes": {"lastIntent": "LaunchRequest"},
            "user": user.clone()
        },
        "context": {
            "System": {
                "application": {"applicationId": "amzn1.ask.skill.12345678-abcd-1234-abcd-123456789012"},
                "user": user,
                "device": {"deviceId": "amzn1.ask.device.AAAA", "supportedInterfaces": {}},
                "apiEndpoint": "https://api.amazonalexa.com",
                "apiAccessToken": "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.alexa-api"
            },
            "Viewport": {"experiences": [{"canRotate": false}], "shape": "RECTANGLE"}
        },
        "request": {
            "type": "IntentRequest",
            "requestId": "amzn1.echo-api.request.5c6b9f1d",
            "timestamp": "2024-05-13T12:34:56Z",
            "locale": "en-US",
            "intent": {
                "name": "GetOpportunitiesIntent",
                "confirmationStatus": "NONE",
                "slots": {"stage": {"name": "stage", "value": "closed won", "confirmationStatus": "NONE"}}
            },
            "dialogState": "COMPLETED"
        }
    })
}

fn launch_request_with_session_token_only() -> Value {
    json!({
        "version": "1.0",
        "session": {
            "new": true,
            "sessionId": "amzn1.echo-api.session.2222",
            "application": {"applicationId": "amzn1.ask.skill.1"},
            "user": {"userId": "amzn1.ask.account.B", "accessToken": "Atza|IwEBIA-session"}
        },
        "context": {"System": {"application": {"applicationId": "amzn1.ask.skill.1"},
                               "user": {"userId": "amzn1.ask.account.B"}}},
        "request": {"type": "LaunchRequest", "requestId": "amzn1.echo-api.request.launch",
                    "timestamp": "2024-05-13T12:00:00Z", "locale": "de-DE", "shouldLinkResultBeReturned": false}
    })
}

fn discover(token: &str) -> Value {
    json!({"directive": {
        "header": {"namespace": "Alexa.Discovery", "name": "Discover", "payloadVersion": "3",
                   "messageId": "1bd5d003-31b9-476f-ad03-71d471922820"},
        "payload": {"scope": {"type": "BearerToken", "token": token}}
    }})
}

fn turn_on(token: Option<&str>) -> Value {
    let mut endpoint = json!({"endpointId": "appliance-001", "cookie": {"room": "kitchen"}});
    if let Some(token) = token {
        endpoint["scope"] = json!({"type": "BearerToken", "token": token});
    }
    json!({"directive": {
        "header": {"namespace": "Alexa.PowerController", "name": "TurnOn", "payloadVersion": "3",
                   "messageId": "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4",
                   "correlationToken": "dFMb0z+PgpgdDmluhJ1LddFvSqZ/jCc8ptlAKulUj90jSqg=="},
        "endpoint": endpoint,
        "payload": {}
    }})
}

fn accept_grant(token: &str) -> Value {
    json!({"directive": {
        "header": {"namespace": "Alexa.Authorization", "name": "AcceptGrant",
                   "messageId": "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4", "payloadVersion": "3"},
        "payload": {
            "grant": {"type": "OAuth2.AuthorizationCode", "code": "ANUbUKCJqlBOpMhwYWxU"},
            "grantee": {"type": "BearerToken", "token": token}
        }
    }})
}

fn parse(value: &Value) -> AlexaRequest {
    AlexaRequest::from_slice(value.to_string().as_bytes()).unwrap()
}

#[test]
fn intent_request_token_is_read_from_context_system_user_and_unpacked() {
    let request = parse(&intent_request(Some(SALESFORCE_TOKEN)));
    assert_eq!(request.kind(), RequestKind::CustomSkill);
    assert_eq!(request.request_type(), Some("IntentRequest"));
    assert_eq!(request.intent_name(), Some("GetOpportunitiesIntent"));
    assert_eq!(request.access_token(), Some(SALESFORCE_TOKEN));
    let account = request.linked_account().unwrap();
    assert!(account.access_token().starts_with("00Dx0000000BV7z!AR8AQ"));
    assert_eq!(
        account.instance_url(),
        Some("https://yourInstance.salesforce.com")
    );
}

#[test]
fn context_token_wins_over_the_session_token() {
    let mut body = intent_request(Some("from-context"));
    body["session"]["user"]["accessToken"] = "from-session".into();
    assert_eq!(parse(&body).access_token(), Some("from-context"));
}

#[test]
fn intent_request_without_token_is_not_linked() {
    let request = parse(&intent_request(None));
    assert_eq!(request.access_token(), None);
    assert_eq!(request.linked_account(), Err(NotLinked::NoToken));
    let mut empty = intent_request(Some(""));
    empty["session"]["user"]["accessToken"] = "".into();
    assert_eq!(parse(&empty).linked_account(), Err(NotLinked::NoToken));
}

#[test]
fn launch_request_falls_back_to_the_session_user_token() {
    let request = parse(&launch_request_with_session_token_only());
    assert_eq!(request.request_type(), Some("LaunchRequest"));
    assert_eq!(request.access_token(), Some("Atza|IwEBIA-session"));
    assert_eq!(
        request.linked_account().unwrap().access_token(),
        "Atza|IwEBIA-session"
    );
}

#[test]
fn discover_token_is_read_from_the_payload_scope() {
    let request = parse(&discover("access-token-from-skill"));
    assert_eq!(request.kind(), RequestKind::SmartHome);
    assert_eq!(request.access_token(), Some("access-token-from-skill"));
    assert_eq!(request.endpoint_id(), None);
}

#[test]
fn turn_on_token_is_read_from_the_endpoint_scope() {
    let request = parse(&turn_on(Some(SALESFORCE_TOKEN)));
    assert_eq!(request.kind(), RequestKind::SmartHome);
    assert_eq!(request.endpoint_id(), Some("appliance-001"));
    assert_eq!(
        request.directive_header().unwrap().name.as_deref(),
        Some("TurnOn")
    );
    assert_eq!(
        request.linked_account().unwrap().instance_url(),
        Some("https://yourInstance.salesforce.com")
    );
}

#[test]
fn accept_grant_token_is_read_from_the_grantee() {
    let request = parse(&accept_grant("access-token-from-skill"));
    assert_eq!(request.kind(), RequestKind::AcceptGrant);
    assert_eq!(request.access_token(), Some("access-token-from-skill"));
    let payload = request
        .directive
        .as_ref()
        .unwrap()
        .payload
        .as_ref()
        .unwrap();
    assert_eq!(
        payload.grant.as_ref().unwrap().code.as_deref(),
        Some("ANUbUKCJqlBOpMhwYWxU")
    );
}

#[test]
fn debug_output_redacts_tokens_and_codes() {
    for body in [
        intent_request(Some("secret-token-1")),
        accept_grant("secret-token-1"),
        turn_on(Some("secret-token-1")),
    ] {
        let debug = format!("{:?}", parse(&body));
        assert!(!debug.contains("secret-token-1"), "{debug}");
        assert!(!debug.contains("ANUbUKCJqlBOpMhwYWxU"), "{debug}");
        assert!(!debug.contains("alexa-api"), "{debug}");
    }
}

#[test]
fn a_token_with_more_parts_than_the_format_is_not_linked() {
    let request = parse(&turn_on(Some("a b c d")));
    assert_eq!(
        request.linked_account(),
        Err(NotLinked::Unpack(UnpackError::TooManyParts { expected: 2 }))
    );
    let format = PackFormat::new()
        .separator('|')
        .field("instance_url")
        .field("id");
    let request = parse(&turn_on(Some("tok|https://x|005x")));
    let account = request.linked_account_with(&format).unwrap();
    assert_eq!(account.field("id"), Some("005x"));
}

#[test]
fn bodies_that_are_not_alexa_requests_are_refused() {
    assert!(matches!(
        AlexaRequest::from_slice(b"not json"),
        Err(EnvelopeError::Json(_))
    ));
    assert_eq!(
        AlexaRequest::from_slice(br#"{"version":"1.0"}"#).unwrap_err(),
        EnvelopeError::NeitherRequestNorDirective
    );
}

#[test]
fn link_account_response_has_alexas_shape() {
    assert_eq!(
        link_account_response("Please link your account in the Alexa app."),
        json!({
            "version": "1.0",
            "response": {
                "outputSpeech": {"type": "PlainText", "text": "Please link your account in the Alexa app."},
                "card": {"type": "LinkAccount"},
                "shouldEndSession": true
            }
        })
    );
    let answer = parse(&intent_request(None)).not_linked_response();
    assert_eq!(answer["response"]["card"], json!({"type": "LinkAccount"}));
    assert!(answer["response"]["outputSpeech"]["text"]
        .as_str()
        .unwrap()
        .contains("link your account"));
}

fn assert_uuid_v4(id: &Value) {
    let id = id.as_str().unwrap();
    assert_eq!(id.len(), 36, "{id}");
    assert_eq!(&id[14..15], "4", "{id}");
}

#[test]
fn smart_home_error_response_echoes_correlation_token_and_endpoint() {
    let request = parse(&turn_on(None));
    let answer = request.not_linked_response();
    let header = &answer["event"]["header"];
    assert_eq!(header["namespace"], "Alexa");
    assert_eq!(header["name"], "ErrorResponse");
    assert_eq!(header["payloadVersion"], "3");
    assert_eq!(
        header["correlationToken"],
        "dFMb0z+PgpgdDmluhJ1LddFvSqZ/jCc8ptlAKulUj90jSqg=="
    );
    assert_uuid_v4(&header["messageId"]);
    assert_ne!(header["messageId"], "5f8a426e-01e4-4cc9-8b79-65f8bd0fd8a4");
    assert_eq!(
        answer["event"]["endpoint"],
        json!({"endpointId": "appliance-001"})
    );
    assert_eq!(
        answer["event"]["payload"]["type"],
        "INVALID_AUTHORIZATION_CREDENTIAL"
    );
    assert!(answer["event"]["payload"]["message"].is_string());

    let expired = request.smart_home_error_response(
        SmartHomeErrorType::ExpiredAuthorizationCredential,
        "token expired",
    );
    assert_eq!(
        expired["event"]["payload"],
        json!({"type": "EXPIRED_AUTHORIZATION_CREDENTIAL", "message": "token expired"})
    );
}

#[test]
fn discover_and_accept_grant_errors_have_no_endpoint_or_correlation_token() {
    let answer = parse(&discover("")).not_linked_response();
    assert!(answer["event"].get("endpoint").is_none());
    assert!(answer["event"]["header"].get("correlationToken").is_none());
    assert_eq!(answer["event"]["header"]["namespace"], "Alexa");

    let answer = parse(&accept_grant("")).not_linked_response();
    assert_eq!(
        answer["event"]["header"]["namespace"],
        "Alexa.Authorization"
    );
    assert_eq!(answer["event"]["header"]["name"], "ErrorResponse");
    assert_eq!(answer["event"]["payload"]["type"], "ACCEPT_GRANT_FAILED");
}

#[cfg(feature = "axum")]
mod extractor {
    use super::*;
    use account_link_bridge::skill::LinkedAccount;
    use axum::body::Body;
    use axum::routing::post;
    use axum::{Extension, Json, Router};
    use http::{Request, StatusCode};
    use http_body_util::BodyExt;
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use tower::ServiceExt;

    async fn skill(account: LinkedAccount) -> Json<Value> {
        Json(json!({
            "access_token": account.access_token(),
            "instance_url": account.instance_url(),
            "kind": format!("{:?}", account.request.kind()),
        }))
    }

    fn app() -> Router {
        Router::new().route("/skill", post(skill))
    }

    async fn call(app: Router, body: String) -> (StatusCode, String, Value) {
        let response = app
            .oneshot(Request::post("/skill").body(Body::from(body)).unwrap())
            .await
            .unwrap();
        let status = response.status();
        let content_type = response
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let bytes = response.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        (status, content_type, json)
    }

    #[tokio::test]
    async fn linked_account_gives_the_handler_the_unpacked_token() {
        let (status, _, json) =
            call(app(), intent_request(Some(SALESFORCE_TOKEN)).to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(json["access_token"]
            .as_str()
            .unwrap()
            .starts_with("00Dx0000000BV7z!"));
        assert_eq!(json["instance_url"], "https://yourInstance.salesforce.com");
        assert_eq!(json["kind"], "CustomSkill");
    }

    #[tokio::test]
    async fn a_custom_skill_without_token_gets_the_link_account_card_with_200() {
        let (status, content_type, json) = call(app(), intent_request(None).to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            content_type.starts_with("application/json"),
            "{content_type}"
        );
        assert_eq!(json["response"]["card"]["type"], "LinkAccount");
        assert_eq!(json["response"]["shouldEndSession"], true);
    }

    #[tokio::test]
    async fn a_directive_without_token_gets_the_error_response_event_with_200() {
        let (status, _, json) = call(app(), turn_on(None).to_string()).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["event"]["header"]["name"], "ErrorResponse");
        assert_eq!(
            json["event"]["payload"]["type"],
            "INVALID_AUTHORIZATION_CREDENTIAL"
        );
    }

    #[tokio::test]
    async fn a_body_that_is_not_an_alexa_request_gets_400() {
        let (status, _, _) = call(app(), "{\"hello\":1}".to_owned()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
    }

    #[tokio::test]
    async fn the_pack_format_comes_from_an_extension_layer() {
        let format = PackFormat::new().separator('|').field("instance_url");
        let app = app().layer(Extension(format));
        let (status, _, json) = call(
            app,
            turn_on(Some("tok|https://eu1.salesforce.com")).to_string(),
        )
        .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(json["access_token"], "tok");
        assert_eq!(json["instance_url"], "https://eu1.salesforce.com");
        assert_eq!(json["kind"], "SmartHome");
    }

    #[tokio::test]
    async fn the_extractor_works_over_a_real_loopback_server() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app()).await.unwrap() });
        let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
        for (body, expected) in [
            (accept_grant(SALESFORCE_TOKEN), "AcceptGrant"),
            (accept_grant(""), "ACCEPT_GRANT_FAILED"),
        ] {
            let response = client
                .request(
                    Request::post(format!("http://{addr}/skill"))
                        .header("content-type", "application/json; charset=utf-8")
                        .body(Body::from(body.to_string()))
                        .unwrap(),
                )
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            let json: Value = serde_json::from_slice(&bytes).unwrap();
            let seen = json["kind"]
                .as_str()
                .or(json["event"]["payload"]["type"].as_str());
            assert_eq!(seen, Some(expected), "{json}");
        }
    }
}

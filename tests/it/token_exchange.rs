//! The token exchange over real loopback HTTP: an axum app with the layers, the crate's upstream
//! client, and testkit's fake Salesforce, which records what it received.

use testkit as support;

use std::time::Duration;

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{oauth::ClientAuth, PackedToken, Provider, TokenExchangeLayer};
use axum::Router;
use support::{basic, post, FakeUpstream, Fault};

/// Serves `provider`'s token exchange at `/token` in an axum app, in front of `upstream_url`.
async fn bridge(provider: Provider, upstream_url: &str) -> String {
    let upstream = Upstream::new(upstream_url.parse().unwrap()).timeout(Duration::from_secs(2));
    let token = tower::ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(provider))
        .service(upstream);
    let app = Router::new().route_service("/token", token);
    let addr = support::serve_axum(app).await;
    format!("http://{addr}/token")
}

const ALEXA_JSON: &str = r#"{"grant_type":"authorization_code","code":"SplxlOBeZQQYbYS6WxSbIA","redirect_uri":"https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F","client_id":"alexa","client_secret":"alexa-secret"}"#;

#[tokio::test]
async fn json_body_without_content_type_becomes_an_encoded_form_upstream() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let seen = upstream.last();
    assert_eq!(seen.path, "/services/oauth2/token");
    assert_eq!(
        seen.header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(seen.header("accept"), Some("application/json"));
    assert_eq!(
        seen.header("content-length"),
        Some(seen.body.len().to_string().as_str())
    );
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM3BVP74N95SP1F&client_id=alexa&client_secret=alexa-secret"
    );
}

#[tokio::test]
async fn salesforce_answer_gets_expires_in_a_packed_instance_url_and_no_store() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.header("content-type"),
        Some("application/json;charset=UTF-8")
    );
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    assert_eq!(reply.header("pragma"), Some("no-cache"));
    support::assert_salesforce_token(&reply.json());
}

#[tokio::test]
async fn form_with_a_charset_parameter_is_accepted() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(
        &url,
        &[(
            "content-type",
            "application/x-www-form-urlencoded; charset=UTF-8",
        )],
        "grant_type=authorization_code&code=abc&client_id=alexa&client_secret=s",
    )
    .await;

    assert_eq!(reply.status, 200);
    assert_eq!(upstream.last().param("code").as_deref(), Some("abc"));
}

#[tokio::test]
async fn basic_credentials_are_moved_into_the_body_for_salesforce() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(
        &url,
        &[
            ("content-type", "application/x-www-form-urlencoded"),
            ("authorization", &basic("alexa%2Bskill", "p%40ss%2Bword")),
        ],
        "grant_type=authorization_code&code=abc",
    )
    .await;

    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    assert_eq!(seen.header("authorization"), None);
    assert_eq!(seen.param("client_id").as_deref(), Some("alexa+skill"));
    assert_eq!(seen.param("client_secret").as_deref(), Some("p@ss+word"));
}

#[tokio::test]
async fn body_credentials_go_in_basic_for_a_basic_provider() {
    let upstream = FakeUpstream::generic().await;
    let provider = Provider::generic().client_auth(ClientAuth::Basic);
    let url = bridge(provider, &upstream.token_url()).await;

    let reply = post(
        &url,
        &[],
        "grant_type=authorization_code&code=abc&client_id=id%3Aone&client_secret=a%2Bb",
    )
    .await;

    assert_eq!(reply.status, 200);
    let seen = upstream.last();
    assert_eq!(
        seen.header("authorization"),
        Some(basic("id%3Aone", "a%2Bb").as_str())
    );
    assert_eq!(seen.param("client_secret"), None);
    assert_eq!(
        std::str::from_utf8(&seen.body).unwrap(),
        "grant_type=authorization_code&code=abc"
    );
}

#[tokio::test]
async fn a_code_carrying_an_injection_arrives_upstream_as_one_intact_code() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let body = r#"{"grant_type":"authorization_code","code":"abc&client_id=evil&grant_type=password","client_id":"alexa","client_secret":"s"}"#;
    let reply = post(&url, &[], body).await;

    assert_eq!(reply.status, 200);
    let form = upstream.last().form();
    assert_eq!(form.iter().filter(|(n, _)| n == "client_id").count(), 1);
    assert_eq!(form.iter().filter(|(n, _)| n == "grant_type").count(), 1);
    assert_eq!(
        upstream.last().param("code").as_deref(),
        Some("abc&client_id=evil&grant_type=password")
    );
    assert_eq!(upstream.last().param("client_id").as_deref(), Some("alexa"));
}

#[tokio::test]
async fn refresh_without_refresh_token_in_the_answer_gets_the_one_sent() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(
        &url,
        &[],
        "grant_type=refresh_token&refresh_token=5Aep861TSESvWeug&client_id=alexa&client_secret=s",
    )
    .await;

    assert_eq!(reply.status, 200);
    let answer = reply.json();
    assert_eq!(answer["refresh_token"], "5Aep861TSESvWeug");
    assert_eq!(answer["expires_in"], 5400);
    assert_eq!(
        upstream.last().param("grant_type").as_deref(),
        Some("refresh_token")
    );
}

#[tokio::test]
async fn upstream_invalid_grant_passes_through_as_rfc_6749() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(
        &url,
        &[],
        "grant_type=authorization_code&code=expired&client_id=a&client_secret=s",
    )
    .await;

    assert_eq!(reply.status, 400);
    assert_eq!(reply.oauth_error(), "invalid_grant");
    assert_eq!(
        reply.json()["error_description"],
        "authorization code [redacted]"
    );
}

#[tokio::test]
async fn upstream_html_500_becomes_502_json_server_error() {
    // The outage page echoes the code (SplxlOBeZQQYbYS6WxSbIA) and the client secret.
    let upstream = FakeUpstream::salesforce().fault(Fault::Html(500)).await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 502);
    assert_eq!(reply.oauth_error(), "server_error");
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(description.contains("500"), "{description}");
    assert!(!description.contains("SplxlOBeZQQYbYS6WxSbIA"));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_json_and_never_reaches_upstream() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(
        Provider::salesforce().request_body_limit(1024),
        &upstream.token_url(),
    )
    .await;

    let big = format!("grant_type=authorization_code&code={}", "a".repeat(2000));
    let reply = post(
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        big,
    )
    .await;

    assert_eq!(reply.status, 413);
    assert_eq!(reply.oauth_error(), "invalid_request");
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn malformed_requests_are_answered_by_the_bridge_and_never_forwarded() {
    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;
    let form = ("content-type", "application/x-www-form-urlencoded");
    let auth = basic("alexa", "s");
    type Case<'a> = (Vec<(&'a str, &'a str)>, &'a str, u16, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![("content-type", "application/xml")],
            "<grant_type/>",
            400,
            "invalid_request",
        ),
        (
            vec![],
            r#"{"grant_type":"authorization_code","code":123}"#,
            400,
            "invalid_request",
        ),
        (
            vec![form],
            "grant_type=authorization_code&code=a&code=b",
            400,
            "invalid_request",
        ),
        (
            vec![form],
            "grant_type=authorization_code&code=%zz",
            400,
            "invalid_request",
        ),
        (vec![form], "code=abc", 400, "invalid_request"),
        (
            vec![form],
            "grant_type=password&username=u&password=p",
            400,
            "unsupported_grant_type",
        ),
        (
            vec![form],
            "grant_type=authorization_code",
            400,
            "invalid_request",
        ),
        (
            vec![form],
            "grant_type=refresh_token",
            400,
            "invalid_request",
        ),
        (
            vec![form, ("authorization", "Basic not-base64!")],
            "grant_type=refresh_token&refresh_token=r",
            401,
            "invalid_client",
        ),
        (
            vec![form, ("authorization", auth.as_str())],
            "grant_type=refresh_token&refresh_token=r&client_secret=s",
            400,
            "invalid_request",
        ),
        (
            vec![],
            r#"{"grant_type":"authorization_code","code":"a""#,
            400,
            "invalid_request",
        ),
    ];
    for (headers, body, status, error) in cases {
        let reply = post(&url, &headers, body.to_string()).await;
        assert_eq!(reply.status, status, "{body}");
        assert_eq!(reply.oauth_error(), error, "{body}");
        if status == 401 {
            assert!(reply
                .header("www-authenticate")
                .unwrap()
                .starts_with("Basic"));
        }
    }
    assert!(upstream.seen().is_empty(), "{:?}", upstream.seen());
    // The bridge still serves.
    assert_eq!(post(&url, &[], ALEXA_JSON).await.status, 200);
}

#[tokio::test]
async fn a_refused_upstream_is_a_502_json_answer_not_a_dropped_connection() {
    let closed = testkit::ClosedPort::new();
    let url = bridge(Provider::salesforce(), &closed.url("/token")).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 502);
    let error = reply.oauth_error();
    assert_ne!(error, "invalid_grant");
    assert_eq!(error, "temporarily_unavailable");
    assert!(reply.json()["error_description"]
        .as_str()
        .unwrap()
        .contains("refused"));
}

#[tokio::test]
async fn the_oauth2_crate_reads_the_bridge_answer_as_a_standard_token_response() {
    use oauth2::basic::BasicClient;
    use oauth2::{AuthUrl, AuthorizationCode, ClientId, ClientSecret, TokenResponse, TokenUrl};

    let upstream = FakeUpstream::salesforce().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;
    let client = BasicClient::new(ClientId::new("alexa".into()))
        .set_client_secret(ClientSecret::new("alexa secret+%".into()))
        .set_auth_uri(AuthUrl::new("https://example.invalid/authorize".into()).unwrap())
        .set_token_uri(TokenUrl::new(url).unwrap());
    let http = |request: oauth2::HttpRequest| async move {
        let (parts, body) = request.into_parts();
        let request =
            http::Request::from_parts(parts, http_body_util::Full::new(bytes::Bytes::from(body)));
        let reply = support::send(request).await;
        let mut response = http::Response::new(reply.body.to_vec());
        *response.status_mut() = reply.status;
        *response.headers_mut() = reply.headers;
        Ok::<_, std::convert::Infallible>(response)
    };

    let token = client
        .exchange_code(AuthorizationCode::new("code-from-salesforce".into()))
        .request_async(&http)
        .await
        .expect("the oauth2 crate accepts the bridge's answer");

    assert_eq!(token.expires_in(), Some(Duration::from_secs(5400)));
    let packed = PackedToken::unpack(token.access_token().secret()).unwrap();
    assert_eq!(packed.instance_url(), Some("https://na1.salesforce.com"));
    // oauth2 sends Basic with form-encoded id and secret (RFC 6749 §2.3.1); Salesforce gets them
    // decoded, in the body.
    assert_eq!(
        upstream.last().param("client_secret").as_deref(),
        Some("alexa secret+%")
    );
}

/// A JWT (its signature is never checked by the bridge) with this payload, base64url.
fn jwt(payload: &str) -> String {
    use base64::Engine;
    let encode = |s: &str| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(s);
    format!(
        "{}.{}.c2lnbmF0dXJl",
        encode(r#"{"alg":"RS256","typ":"JWT"}"#),
        encode(payload)
    )
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[tokio::test]
async fn a_salesforce_jwt_answer_gets_expires_in_from_exp_and_both_instance_urls_packed() {
    let exp = unix_now() + 2 * 3600;
    let token = jwt(&format!(
        r#"{{"iss":"https://acme.my.salesforce.com","sub":"005x0","exp":{exp}}}"#
    ));
    let upstream = FakeUpstream::salesforce()
        .access_token(token.clone())
        .instance_url("https://acme.my.salesforce.com")
        .api_instance_url("https://api.salesforce.com")
        .await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.json();
    let secs = answer["expires_in"].as_u64().unwrap();
    assert!(
        (7190..=7200).contains(&secs),
        "expires_in {secs}, not the 5400 constant"
    );
    let packed = PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(packed.access_token(), token);
    assert_eq!(
        packed.instance_url(),
        Some("https://acme.my.salesforce.com")
    );
    assert_eq!(
        packed.api_instance_url(),
        Some("https://api.salesforce.com")
    );
}

#[tokio::test]
async fn a_malformed_jwt_falls_back_to_the_preset_constant() {
    let upstream = FakeUpstream::salesforce()
        .access_token("eyJhbGciOiJSUzI1NiJ9.bm90IGpzb24.c2ln")
        .instance_url("https://acme.my.salesforce.com")
        .await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["expires_in"], 5400);
}

#[tokio::test]
async fn a_jwt_expiring_within_360_s_is_answered_360() {
    let token = jwt(&format!(r#"{{"exp":{}}}"#, unix_now() + 60));
    let upstream = FakeUpstream::salesforce()
        .access_token(token)
        .instance_url("https://x.my.salesforce.com")
        .await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(&url, &[], ALEXA_JSON).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.json()["expires_in"], 360);
}

#[tokio::test]
async fn a_rotated_refresh_token_reaches_alexa_untouched() {
    let upstream = FakeUpstream::salesforce().rotate_refresh_tokens().await;
    let url = bridge(Provider::salesforce(), &upstream.token_url()).await;

    let reply = post(
        &url,
        &[],
        r#"{"grant_type":"refresh_token","refresh_token":"5Aep861.the-old-one","client_id":"alexa","client_secret":"s"}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let rotated = upstream.refresh_token(1);
    assert_ne!(rotated, "5Aep861.the-old-one");
    assert_eq!(reply.json()["refresh_token"], rotated.as_str());
    assert_eq!(
        upstream.last().param("refresh_token").as_deref(),
        Some("5Aep861.the-old-one")
    );
}

//! Every flow at TRACE level, with sentinel secrets: none may appear in any log line, answer
//! description, or `Debug` output of configuration and request types.

use testkit as support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenRequest};
use account_link_bridge_server::Bridge;
use bytes::Bytes;
use http_body_util::Full;
use support::{basic, post, Answer, FakeUpstream};

const CLIENT_SECRET: &str = "SENTINELclientsecret1";
const CODE: &str = "SENTINELcode2";
const REFRESH: &str = "SENTINELrefresh3";
const ACCESS: &str = "SENTINELaccess4";
const VERIFIER: &str = "SENTINELverifier5SENTINELverifier5SENTINELverifier5";
const UPSTREAM_REFRESH: &str = "SENTINELupstreamrefresh6";
const SENTINELS: [&str; 6] = [
    CLIENT_SECRET,
    CODE,
    REFRESH,
    ACCESS,
    VERIFIER,
    UPSTREAM_REFRESH,
];

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn assert_no_sentinel(what: &str, text: &str) {
    for sentinel in SENTINELS {
        assert!(
            !text.contains(sentinel),
            "{what} contains {sentinel}:\n{text}"
        );
    }
}

#[test]
fn no_secret_reaches_any_log_line_or_answer_at_trace_level() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .init();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut answers = String::new();
    runtime.block_on(async {
        // Salesforce issuing sentinel tokens (a new refresh token on each refresh too), and
        // careless: its refusal and its error page echo the client secret and a token.
        let upstream = FakeUpstream::salesforce()
            .access_token(ACCESS)
            .refresh_token(UPSTREAM_REFRESH)
            .rotate_refresh_tokens()
            .answer_with(|seen| match seen.param("code").as_deref() {
                Some("bad") => Some(Answer::json(400, format!(r#"{{"error":"invalid_grant","error_description":"code bad with secret {CLIENT_SECRET} refused"}}"#))),
                Some("html") => Some(Answer { status: 500, content_type: "text/html", body: format!("<p>{CLIENT_SECRET} {ACCESS}</p>") }),
                _ => None,
            })
            .await;
        let sealer = StateSealer::random();
        let authorize = AuthorizeRedirect::builder()
            .upstream_authorize_url(upstream.authorize_url())
            .client_id("connected-app")
            .client_secret(CLIENT_SECRET)
            .public_url("https://bridge.example.com")
            .sealer(sealer)
            .pkce(true)
            .build()
            .unwrap();
        let upstream_client = Upstream::new(upstream.token_url().parse().unwrap());
        let base = support::serve_service(Bridge::with_authorize(Provider::salesforce(), upstream_client, authorize)).await;
        let token = format!("{base}/token");
        let form = ("content-type", "application/x-www-form-urlencoded");
        let auth = basic("alexa", CLIENT_SECRET);

        let exchanges: Vec<(Vec<(&str, &str)>, String)> = vec![
            (vec![form], format!("grant_type=authorization_code&code={CODE}&code_verifier={VERIFIER}&client_id=alexa&client_secret={CLIENT_SECRET}")),
            (vec![form, ("authorization", auth.as_str())], format!("grant_type=refresh_token&refresh_token={REFRESH}")),
            (vec![], format!(r#"{{"grant_type":"authorization_code","code":"bad","client_id":"alexa","client_secret":"{CLIENT_SECRET}"}}"#)),
            (vec![form], format!("grant_type=authorization_code&code=html&client_id=alexa&client_secret={CLIENT_SECRET}")),
            (vec![form], format!("grant_type=authorization_code&code={CODE}&code={CODE}&client_secret={CLIENT_SECRET}")),
            (vec![("content-type", "text/xml")], format!("<code>{CODE}</code>")),
            (vec![form, ("authorization", auth.as_str())], format!("grant_type=refresh_token&refresh_token={REFRESH}&client_secret={CLIENT_SECRET}")),
            (vec![form], format!("grant_type=password&password={CLIENT_SECRET}")),
            (vec![form], format!("grant_type=authorization_code&code=alb1.{CODE}&client_secret={CLIENT_SECRET}")),
        ];
        for (headers, body) in exchanges {
            let reply = post(&token, &headers, body).await;
            answers.push_str(&String::from_utf8_lossy(&reply.body));
            answers.push('\n');
        }
        // The browser routes: a callback with a forged state carrying a sentinel.
        let callback = support::send(
            http::Request::get(format!("{base}/callback?code={CODE}&state={REFRESH}")).body(Full::<Bytes>::default()).unwrap(),
        )
        .await;
        answers.push_str(&String::from_utf8_lossy(&callback.body));
    });
    drop(runtime);

    let logs = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("token exchange"), "the capture works: {logs}");
    assert!(
        logs.lines().count() > 10,
        "TRACE output was captured: {logs}"
    );
    // The successful exchange answered Alexa the (packed) access token: that is the only place
    // a token may appear, so the answers checked exclude the success bodies' tokens.
    let answers: String = answers
        .lines()
        .filter(|line| !line.contains("\"access_token\""))
        .collect::<Vec<_>>()
        .join("\n");
    assert_no_sentinel("the logs", &logs);
    assert_no_sentinel("an error answer", &answers);
}

#[test]
fn debug_of_configuration_and_request_types_is_redacted() {
    let request = TokenRequest::parse(
        &http::HeaderMap::new(),
        format!("grant_type=authorization_code&code={CODE}&code_verifier={VERIFIER}&client_id=a&client_secret={CLIENT_SECRET}").as_bytes(),
    )
    .unwrap();
    let key = "U0VOVElORUxjbGllbnRzZWNyZXQxU0VOVElORUxjbGllbnRzZWNyZXQx";
    let sealer = StateSealer::from_base64_keys(key).unwrap();
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url("https://login.salesforce.com/services/oauth2/authorize")
        .client_id("app")
        .client_secret(CLIENT_SECRET)
        .public_url("https://bridge.example.com")
        .sealer(sealer.clone())
        .build()
        .unwrap();
    let provider = Provider::salesforce().extra_param("client_assertion", CLIENT_SECRET);
    let texts = [
        format!("{request:?}"),
        format!("{sealer:?}"),
        format!("{authorize:?}"),
        format!("{provider:?}"),
        format!(
            "{:?}",
            account_link_bridge::PackedToken::unpack(&format!("{ACCESS} https://x")).unwrap()
        ),
    ];
    for text in texts {
        assert_no_sentinel("Debug output", &text);
        assert!(!text.contains(key), "{text}");
    }
}

//! Diagnostics: the per-exchange trace, the authorize/callback records, the metrics, and the
//! `bridge doctor` verdicts, all over loopback; sentinel secrets never show.

use testkit as support;

use account_link_bridge_server::doctor;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use account_link_bridge::authorize::{
    AuthorizeRedirect, AuthorizeReport, AuthorizeVerdict, StateVerdict,
};
use account_link_bridge::diagnostics::{ExchangeTrace, Fingerprint, Outcome};
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{FullBody, Provider};
use account_link_bridge_server::Bridge;
use bytes::Bytes;
use clap::Parser;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use support::process::BridgeProcess;
use support::{Answer, FakeUpstream, Seen};
use tower::ServiceExt;

const CODE: &str = "SENTINEL-CODE-7f3a";
const SECRET: &str = "SENTINEL-SECRET-9c1d";
const REFRESH: &str = "SENTINEL-REFRESH-2b8e";
const VERIFIER: &str = "SENTINEL-VERIFIER-5e0f";

fn assert_no_sentinel(text: &str) {
    for sentinel in ["SENTINEL", "AR8AQAxo9", "5Aep861TSES"] {
        assert!(!text.contains(sentinel), "{sentinel} leaked into: {text}");
    }
}

/// Captures the events of this thread's tracing dispatcher as JSON lines.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn start() -> (Self, tracing::subscriber::DefaultGuard) {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .json()
            .flatten_event(true)
            .with_max_level(tracing::Level::DEBUG)
            .with_writer(move || writer.clone())
            .finish();
        (captured, tracing::subscriber::set_default(subscriber))
    }

    fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// The trace records (target account_link_bridge::trace).
    fn traces(&self) -> Vec<serde_json::Value> {
        self.text()
            .lines()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|v| v["target"] == "account_link_bridge::trace")
            .collect()
    }
}

async fn exchange(
    bridge: &Bridge,
    content_type: Option<&str>,
    basic: Option<&str>,
    body: &str,
) -> (Response<Bytes>, ExchangeTrace) {
    let mut request = Request::post("/token");
    if let Some(ct) = content_type {
        request = request.header("content-type", ct);
    }
    if let Some(basic) = basic {
        request = request.header("authorization", basic);
    }
    let request = request
        .body(FullBody::from(Bytes::from(body.to_owned())))
        .unwrap();
    let response = bridge.clone().oneshot(request).await.unwrap();
    let trace = ExchangeTrace::from_response(&response, Duration::from_millis(5));
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    (Response::from_parts(parts, body), trace)
}

fn bridge_to(provider: Provider, url: &str) -> Bridge {
    Bridge::new(provider, Upstream::new(url.parse().unwrap()))
}

fn code_form() -> String {
    format!("grant_type=authorization_code&code={CODE}&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM3BVP74N95SP1F&client_id=alexa&client_secret={SECRET}&code_verifier={VERIFIER}")
}

#[tokio::test]
async fn a_successful_exchange_is_traced_field_by_field_without_secrets() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = bridge_to(Provider::salesforce(), &upstream.token_url());
    let (captured, _guard) = Captured::start();
    let body = format!(
        r#"{{"grant_type":"authorization_code","code":"{CODE}","client_id":"alexa","client_secret":"{SECRET}"}}"#
    );
    let (response, trace) = exchange(&bridge, None, None, &body).await;
    assert_eq!(response.status(), 200);

    let r = &trace.request;
    assert_eq!(r.content_type, None);
    assert_eq!(r.body_format, Some("json"));
    assert_eq!(r.credentials, Some("body"));
    assert_eq!(r.grant_type.as_deref(), Some("authorization_code"));
    assert_eq!(
        r.params,
        ["grant_type", "code", "client_id", "client_secret"]
    );
    assert_eq!(
        r.upstream_params,
        ["grant_type", "code", "client_id", "client_secret"]
    );
    assert_eq!(r.upstream_credentials, Some("body"));
    assert_eq!(r.fingerprint("code"), Some(Fingerprint::of(CODE)));
    assert_eq!(
        r.fingerprint("client_secret"),
        Some(Fingerprint::of(SECRET))
    );
    assert_eq!(trace.upstream_status, Some(200));
    assert_eq!(
        trace.upstream_content_type.as_deref(),
        Some("application/json")
    );
    assert_eq!(trace.upstream_shape, Some("json"));
    assert!(trace.upstream_fields.iter().any(|f| f == "instance_url"));
    assert!(trace.upstream_fields.iter().any(|f| f == "refresh_token"));
    assert_eq!(trace.expires_in_type, Some("absent"));
    assert_eq!(trace.expires_in_action, Some("injected"));
    assert_eq!(trace.expires_in, Some(5400));
    assert!(trace.packed);
    assert!(!trace.refresh_token_echoed);
    assert_eq!(trace.upstream_error, None);
    assert_eq!(trace.answered_error, None);
    assert_eq!(trace.outcome, Outcome::Token);
    assert_eq!(trace.status, 200);
    assert!(trace.upstream_ms.is_some_and(|ms| ms > 0.0));
    assert!(trace.bridge_ms >= 0.0);

    // The emitted record says the same, and nothing secret.
    let traces = captured.traces();
    assert_eq!(traces.len(), 1, "{}", captured.text());
    let t = &traces[0];
    assert_eq!(t["level"], "DEBUG");
    assert_eq!(t["route"], "token");
    assert_eq!(t["alexa_body_format"], "json");
    assert_eq!(t["alexa_params"], "grant_type,code,client_id,client_secret");
    assert_eq!(t["upstream_credentials"], "body");
    assert_eq!(t["upstream_shape"], "json");
    assert_eq!(t["expires_in_action"], "injected");
    assert_eq!(t["outcome"], "token");
    assert_eq!(
        t["fingerprints"],
        format!(
            "code={} client_secret={}",
            Fingerprint::of(CODE),
            Fingerprint::of(SECRET)
        )
    );
    assert!(t["upstream_ms"].as_f64().is_some());
    assert_no_sentinel(&captured.text());
}

#[tokio::test]
async fn a_refresh_through_basic_credentials_shows_the_echo_and_the_placement() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = bridge_to(Provider::salesforce(), &upstream.token_url());
    let (captured, _guard) = Captured::start();
    let (response, trace) = exchange(
        &bridge,
        Some("application/x-www-form-urlencoded; charset=utf-8"),
        Some(&support::basic("alexa", SECRET)),
        &format!("grant_type=refresh_token&refresh_token={REFRESH}"),
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        trace.request.content_type.as_deref(),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(trace.request.credentials, Some("basic"));
    assert_eq!(trace.request.params, ["grant_type", "refresh_token"]);
    assert_eq!(trace.request.upstream_credentials, Some("body"));
    assert_eq!(
        trace.request.fingerprint("refresh_token"),
        Some(Fingerprint::of(REFRESH))
    );
    assert!(trace.refresh_token_echoed);
    assert_eq!(trace.outcome, Outcome::Token);
    assert_no_sentinel(&captured.text());
}

async fn failing(answer: Answer) -> FakeUpstream {
    FakeUpstream::start(move |_: &Seen| answer.clone()).await
}

#[tokio::test]
async fn each_failure_class_is_traced_with_its_shape_and_mapping() {
    let (captured, _guard) = Captured::start();

    // The upstream's own verdict: relayed.
    let rfc = failing(Answer::json(
        400,
        format!(r#"{{"error":"invalid_grant","error_description":"code {CODE} expired"}}"#),
    ))
    .await;
    let (_, t) = exchange(
        &bridge_to(Provider::salesforce(), &rfc.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::UpstreamError);
    assert_eq!(t.upstream_status, Some(400));
    assert_eq!(t.upstream_shape, Some("json"));
    assert_eq!(t.upstream_fields, ["error", "error_description"]);
    assert_eq!(t.upstream_error.as_deref(), Some("invalid_grant"));
    assert_eq!(t.answered_error.as_deref(), Some("invalid_grant"));
    assert_eq!(t.status, 400);
    assert_eq!(
        t.request.fingerprint("code_verifier"),
        Some(Fingerprint::of(VERIFIER))
    );

    // An HTML 500: a fault, never invalid_grant.
    let html = failing(Answer {
        status: 500,
        content_type: "text/html",
        body: "<html><body>Internal Server Error</body></html>".into(),
    })
    .await;
    let (_, t) = exchange(
        &bridge_to(Provider::salesforce(), &html.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::UpstreamFault);
    assert_eq!(t.upstream_status, Some(500));
    assert_eq!(t.upstream_content_type.as_deref(), Some("text/html"));
    assert_eq!(t.upstream_shape, Some("html"));
    assert_eq!(t.answered_error.as_deref(), Some("server_error"));
    assert_eq!(t.status, 502);

    // GitHub's error with HTTP 200, mapped.
    let github = failing(Answer::json(
        200,
        r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#,
    ))
    .await;
    let (_, t) = exchange(
        &bridge_to(Provider::github(), &github.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::UpstreamError);
    assert_eq!(t.upstream_shape, Some("200-with-error"));
    assert_eq!(t.upstream_error.as_deref(), Some("bad_verification_code"));
    assert_eq!(t.answered_error.as_deref(), Some("invalid_grant"));

    // Slack's ok:false, with Basic toward the upstream.
    let slack = failing(Answer::json(200, r#"{"ok":false,"error":"invalid_code"}"#)).await;
    let (_, t) = exchange(
        &bridge_to(Provider::slack(), &slack.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::UpstreamError);
    assert_eq!(t.upstream_shape, Some("ok:false"));
    assert_eq!(t.request.upstream_credentials, Some("basic"));
    assert!(!t
        .request
        .upstream_params
        .iter()
        .any(|p| p == "client_secret"));
    assert_eq!(t.answered_error.as_deref(), Some("invalid_grant"));

    // A string expires_in is converted, and the type says so.
    let azure = failing(Answer::json(
        200,
        r#"{"access_token":"SENTINEL-ACCESS","expires_in":"3599","token_type":"Bearer"}"#,
    ))
    .await;
    let (_, t) = exchange(
        &bridge_to(Provider::generic(), &azure.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::Token);
    assert_eq!(t.expires_in_type, Some("string"));
    assert_eq!(t.expires_in_action, Some("converted"));
    assert_eq!(t.expires_in, Some(3599));

    // Nobody listening.
    let closed = testkit::ClosedPort::new();
    let url = closed.url("/token");
    let (_, t) = exchange(
        &bridge_to(Provider::generic(), &url),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::Unreachable);
    assert_eq!(t.upstream_status, None);
    assert_eq!(t.upstream_shape, None);
    assert_eq!(t.answered_error.as_deref(), Some("temporarily_unavailable"));

    // Too slow for the upstream timeout.
    let slow = support::serve(|_| async {
        tokio::time::sleep(Duration::from_millis(800)).await;
        Response::new(Full::new(Bytes::from_static(b"{}")))
    })
    .await;
    let upstream = Upstream::new(format!("http://{slow}/token").parse().unwrap())
        .timeout(Duration::from_millis(150));
    let (_, t) = exchange(
        &Bridge::new(Provider::generic(), upstream),
        Some("application/x-www-form-urlencoded"),
        None,
        &code_form(),
    )
    .await;
    assert_eq!(t.outcome, Outcome::Timeout);
    assert_eq!(t.status, 504);
    assert!(t.upstream_ms.is_some_and(|ms| ms >= 150.0));

    // Refused by the bridge itself: the upstream is never called.
    let (_, t) = exchange(
        &bridge_to(Provider::generic(), &rfc.token_url()),
        Some("application/x-www-form-urlencoded"),
        None,
        &format!("grant_type=password&username=u&password={SECRET}"),
    )
    .await;
    assert_eq!(t.outcome, Outcome::Refused);
    assert_eq!(t.answered_error.as_deref(), Some("unsupported_grant_type"));
    assert_eq!(t.upstream_status, None);
    assert_eq!(t.request.upstream_params, Vec::<String>::new());
    let (_, t) = exchange(
        &bridge_to(Provider::generic(), &rfc.token_url()),
        Some("text/plain"),
        None,
        "not a form { nor json",
    )
    .await;
    assert_eq!(t.outcome, Outcome::Refused);
    assert_eq!(t.request.content_type.as_deref(), Some("text/plain"));
    assert_eq!(t.answered_error.as_deref(), Some("invalid_request"));

    let traces = captured.traces();
    assert_eq!(traces.len(), 9, "{}", captured.text());
    let outcomes: Vec<&str> = traces
        .iter()
        .map(|t| t["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [
            "upstream_error",
            "upstream_fault",
            "upstream_error",
            "upstream_error",
            "token",
            "unreachable",
            "timeout",
            "refused",
            "refused"
        ]
    );
    assert_no_sentinel(&captured.text());
}

fn location(response: &Response<impl Sized>) -> url::Url {
    url::Url::parse(response.headers()["location"].to_str().unwrap()).unwrap()
}

fn query(url: &url::Url, name: &str) -> String {
    url.query_pairs()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.into_owned())
        .unwrap()
}

#[tokio::test]
async fn authorize_and_callback_records_follow_the_code_to_the_token_exchange() {
    let upstream = FakeUpstream::salesforce().await;
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url("https://login.example.com/authorize")
        .public_url("https://bridge.example.com")
        .sealer(StateSealer::random())
        .build()
        .unwrap();
    let bridge = Bridge::with_authorize(
        Provider::salesforce(),
        Upstream::new(upstream.token_url().parse().unwrap()),
        authorize,
    );
    let (captured, _guard) = Captured::start();
    let get = |uri: String| {
        let bridge = bridge.clone();
        async move {
            bridge
                .oneshot(Request::get(uri).body(FullBody::default()).unwrap())
                .await
                .unwrap()
        }
    };

    let response = get(
        "/authorize?state=alexa-state&client_id=alexa&response_type=code&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2VENDOR42".into(),
    )
    .await;
    assert_eq!(response.status(), 302);
    let report = response.extensions().get::<AuthorizeReport>().unwrap();
    assert_eq!(report.verdict, AuthorizeVerdict::SentUpstream);
    assert_eq!(report.redirect_host.as_deref(), Some("pitangui.amazon.com"));
    assert_eq!(report.vendor_id.as_deref(), Some("M2VENDOR42"));
    let sealed_state = query(&location(&response), "state");

    // An altered state: refused, and the record says why.
    let tampered = support::tamper(&sealed_state);
    let response = get(format!("/callback?code={CODE}&state={tampered}")).await;
    assert_eq!(response.status(), 400);
    let report = response.extensions().get::<AuthorizeReport>().unwrap();
    assert_eq!(report.verdict, AuthorizeVerdict::Refused);
    assert_eq!(report.state, Some(StateVerdict::TamperedOrWrongKey));
    assert_eq!(report.code, None);

    // A state sealed under another key looks the same to the AEAD.
    let foreign = AuthorizeRedirect::builder()
        .upstream_authorize_url("https://login.example.com/authorize")
        .public_url("https://bridge.example.com")
        .sealer(StateSealer::random())
        .build()
        .unwrap();
    let response = foreign
        .oneshot(
            Request::get(format!("/callback?code={CODE}&state={sealed_state}"))
                .body(FullBody::default())
                .unwrap(),
        )
        .await
        .unwrap();
    let report = response.extensions().get::<AuthorizeReport>().unwrap();
    assert_eq!(report.state, Some(StateVerdict::TamperedOrWrongKey));

    // The upstream refused: relayed, and named.
    let response = get(format!(
        "/callback?error=access_denied&error_description=no&state={sealed_state}"
    ))
    .await;
    let report = response.extensions().get::<AuthorizeReport>().unwrap();
    assert_eq!(report.verdict, AuthorizeVerdict::ErrorToAlexa);
    assert_eq!(report.state, Some(StateVerdict::Ok));
    assert_eq!(report.upstream_error.as_deref(), Some("access_denied"));

    // The code: relayed sealed, fingerprinted, and the same fingerprint at /token. A state is
    // accepted once, so this is a second flow.
    let again = get(
        "/authorize?state=alexa-state&client_id=alexa&response_type=code&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2VENDOR42".into(),
    )
    .await;
    let sealed_state = query(&location(&again), "state");
    let response = get(format!("/callback?code={CODE}&state={sealed_state}")).await;
    assert_eq!(response.status(), 302);
    let report = response
        .extensions()
        .get::<AuthorizeReport>()
        .unwrap()
        .clone();
    assert_eq!(report.verdict, AuthorizeVerdict::CodeToAlexa);
    assert_eq!(report.state, Some(StateVerdict::Ok));
    assert_eq!(report.redirect_host.as_deref(), Some("pitangui.amazon.com"));
    assert_eq!(report.code, Some(Fingerprint::of(CODE)));
    let sealed_code = query(&location(&response), "code");
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", sealed_code.as_str()),
        (
            "redirect_uri",
            "https://pitangui.amazon.com/api/skill/link/M2VENDOR42",
        ),
        ("client_id", "alexa"),
        ("client_secret", SECRET),
    ])
    .unwrap();
    let (response, trace) = exchange(
        &bridge,
        Some("application/x-www-form-urlencoded"),
        None,
        &form,
    )
    .await;
    assert_eq!(response.status(), 200);
    assert_eq!(trace.request.fingerprint("code"), report.code);

    let traces = captured.traces();
    let routes: Vec<&str> = traces
        .iter()
        .map(|t| t["route"].as_str().unwrap())
        .collect();
    assert_eq!(
        routes,
        [
            "authorize",
            "callback",
            "callback",
            "authorize",
            "callback",
            "token"
        ]
    );
    assert_eq!(traces[1]["state"], "tampered_or_wrong_key");
    assert_eq!(traces[2]["upstream_error"], "access_denied");
    assert_eq!(traces[4]["code"], Fingerprint::of(CODE).to_string());
    assert_eq!(traces[4]["vendor_id"], "M2VENDOR42");
    assert_no_sentinel(&captured.text());
}

#[test]
fn metrics_counters_move_as_the_exchanges_say() {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    metrics::with_local_recorder(&recorder, || {
        runtime.block_on(async {
            let upstream = FakeUpstream::salesforce().await;
            let bridge = bridge_to(Provider::salesforce(), &upstream.token_url());
            let form = "application/x-www-form-urlencoded";
            for _ in 0..2 {
                exchange(&bridge, Some(form), None, &code_form()).await;
            }
            let expired = code_form().replace(CODE, "expired");
            exchange(&bridge, Some(form), None, &expired).await;
            exchange(&bridge, Some(form), None, "grant_type=password").await;
            let html = failing(Answer {
                status: 500,
                content_type: "text/html",
                body: "<h1>down</h1>".into(),
            })
            .await;
            let broken = bridge_to(Provider::salesforce(), &html.token_url());
            exchange(&broken, Some(form), None, &code_form()).await;
            bridge
                .clone()
                .oneshot(
                    Request::get(format!("/callback?code={CODE}&state=garbage"))
                        .body(FullBody::default())
                        .unwrap(),
                )
                .await
                .unwrap();
        })
    });
    let text = handle.render();
    let value = |line: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(line))
            .unwrap_or_else(|| panic!("no {line} in:\n{text}"))
            .rsplit(' ')
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    assert_eq!(
        value(
            r#"account_link_bridge_exchanges_total{grant_type="authorization_code",outcome="token"}"#
        ),
        2.0
    );
    assert_eq!(
        value(
            r#"account_link_bridge_exchanges_total{grant_type="authorization_code",outcome="upstream_error"}"#
        ),
        1.0
    );
    assert_eq!(
        value(
            r#"account_link_bridge_exchanges_total{grant_type="authorization_code",outcome="upstream_fault"}"#
        ),
        1.0
    );
    assert_eq!(
        value(r#"account_link_bridge_exchanges_total{grant_type="none",outcome="refused"}"#),
        1.0
    );
    assert_eq!(
        value(r#"account_link_bridge_refusals_total{reason="unsupported_grant_type"}"#),
        1.0
    );
    assert_eq!(
        value(r#"account_link_bridge_upstream_errors_total{class="oauth_error"}"#),
        1.0
    );
    assert_eq!(
        value(r#"account_link_bridge_upstream_errors_total{class="html"}"#),
        1.0
    );
    assert_eq!(
        value("account_link_bridge_upstream_latency_seconds_count"),
        4.0
    );
    // The bridge without the middleman answers /callback 404: no authorize record.
    assert!(!text.contains("account_link_bridge_authorize_total"));
    assert_no_sentinel(&text);
}

// ---- bridge doctor ----

fn doctor_args(url: &str, extra: &[&str]) -> doctor::DoctorArgs {
    let mut args = vec![
        "doctor",
        "--upstream-token-url",
        url,
        "--client-secret",
        SECRET,
    ];
    args.extend_from_slice(extra);
    doctor::DoctorArgs::parse_from(args)
}

async fn run_doctor(url: &str, extra: &[&str]) -> doctor::Report {
    let report = doctor::run(&doctor_args(url, extra)).await.unwrap();
    assert_no_sentinel(&report.table());
    assert_no_sentinel(&serde_json::to_string(&report).unwrap());
    report
}

#[tokio::test]
async fn doctor_names_salesforce_for_a_salesforce_like_upstream() {
    // Salesforce: forms with body credentials only, RFC JSON errors with 400; the doctor's code
    // was never issued (invalid_grant); its authorization endpoint answers with a redirect.
    let upstream = FakeUpstream::salesforce()
        .client("alexa-bridge-doctor", SECRET)
        .issued_codes_only()
        .await;
    let report = run_doctor(
        &upstream.token_url(),
        &["--upstream-authorize-url", &upstream.authorize_url()],
    )
    .await;
    assert!(report.usable, "{}", report.table());
    assert_eq!(report.suggested_provider, "salesforce");
    assert_eq!(report.credentials, "body");
    assert_eq!(report.accept_json, "json-always");
    assert!(!report.errors_as_200);
    assert_eq!(report.tls, "not https");
    assert_eq!(report.authorize.as_deref(), Some("HTTP 302 (answers)"));
    assert_eq!(report.probes[0].format, doctor::AnswerFormat::RfcJson);
    assert_eq!(report.probes[0].error.as_deref(), Some("invalid_grant"));
    assert_eq!(report.probes[1].error.as_deref(), Some("invalid_client"));
    assert_eq!(report.probes[2].error.as_deref(), Some("invalid_request"));
    assert!(report.custom_settings.is_empty());
    // The probes never carried a real code, and the secret went only where asked.
    for seen in upstream.seen() {
        assert!(String::from_utf8_lossy(&seen.body).contains(doctor::INVALID_CODE));
    }
    // Configured for Slack (Basic), this upstream would refuse every exchange.
    let report = run_doctor(&upstream.token_url(), &["--provider", "slack"]).await;
    assert!(report
        .problems
        .iter()
        .any(|p| p.contains("accepts them only in the body")));
}

#[tokio::test]
async fn doctor_names_github_for_form_answers_and_errors_with_200() {
    let upstream = FakeUpstream::start(|seen: &Seen| {
        if seen.header("accept") == Some("application/json") {
            Answer::json(
                200,
                r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#,
            )
        } else {
            Answer {
                status: 200,
                content_type: "application/x-www-form-urlencoded; charset=utf-8",
                body: "error=bad_verification_code&error_description=The+code+passed+is+incorrect+or+expired.".into(),
            }
        }
    })
    .await;
    let url = format!("http://{}/login/oauth/access_token", upstream.addr);
    let report = run_doctor(&url, &[]).await;
    assert!(report.usable, "{}", report.table());
    assert_eq!(report.suggested_provider, "github");
    assert_eq!(report.accept_json, "honoured");
    assert!(report.errors_as_200);
    assert_eq!(report.probes[0].format, doctor::AnswerFormat::ErrorIn200);
    assert_eq!(report.probes[3].format, doctor::AnswerFormat::Form);
    // Configured as Salesforce (the default), forms would break every exchange.
    assert!(
        report.problems.iter().any(|p| p.contains("forms")),
        "{:?}",
        report.problems
    );
}

#[tokio::test]
async fn doctor_names_slack_for_ok_false() {
    let upstream =
        FakeUpstream::start(|_: &Seen| Answer::json(200, r#"{"ok":false,"error":"invalid_code"}"#))
            .await;
    let url = format!("http://{}/api/oauth.v2.access", upstream.addr);
    let report = run_doctor(&url, &["--provider", "generic"]).await;
    assert!(report.usable, "{}", report.table());
    assert_eq!(report.suggested_provider, "slack");
    assert!(report.errors_as_200);
    assert!(report
        .probes
        .iter()
        .all(|p| p.format == doctor::AnswerFormat::OkFalse));
    assert!(report.problems.iter().any(|p| p.contains("ok:false")));
}

#[tokio::test]
async fn doctor_finds_an_upstream_too_slow_for_alexa() {
    let slow = support::serve(|_| async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        Response::builder()
            .status(400)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"error":"invalid_grant"}"#,
            )))
            .unwrap()
    })
    .await;
    let report = run_doctor(
        &format!("http://{slow}/token"),
        &["--alexa-deadline-ms", "150"],
    )
    .await;
    assert!(!report.usable);
    assert!(report.max_latency_ms >= 300);
    assert!(report.unusable_because.unwrap().contains("too slow"));
}

async fn html_500() -> std::net::SocketAddr {
    support::serve(|_| async {
        Response::builder()
            .status(500)
            .header("content-type", "text/html")
            .body(Full::new(Bytes::from_static(
                b"<html><body><h1>500 Internal Server Error</h1></body></html>",
            )))
            .unwrap()
    })
    .await
}

#[tokio::test]
async fn doctor_binary_fails_on_an_html_500_upstream_and_never_prints_the_secret() {
    let addr = html_500().await;
    let url = format!("http://{addr}/token");
    let binary = env!("CARGO_BIN_EXE_bridge");
    let run = |json: bool| {
        let mut command = std::process::Command::new(binary);
        command.args([
            "doctor",
            "--upstream-token-url",
            &url,
            "--client-secret",
            SECRET,
        ]);
        if json {
            command.arg("--json");
        }
        command
    };
    let table = tokio::task::spawn_blocking({
        let mut command = run(false);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(table.stdout).unwrap();
    assert_eq!(table.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("verdict: UNUSABLE"), "{stdout}");
    assert!(stdout.contains("HTML"), "{stdout}");
    // No all-clear above a verdict that says the upstream cannot be used.
    assert!(
        !stdout.contains("nothing found that would break Alexa"),
        "{stdout}"
    );
    assert_no_sentinel(&stdout);
    assert_no_sentinel(&String::from_utf8_lossy(&table.stderr));

    let json = tokio::task::spawn_blocking({
        let mut command = run(true);
        move || command.output().unwrap()
    })
    .await
    .unwrap();
    assert_eq!(json.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(report["usable"], false);
    assert_eq!(report["probes"][0]["status"], 500);
    assert_eq!(report["probes"][0]["format"], "html");
    assert_no_sentinel(&String::from_utf8_lossy(&json.stdout));
}

#[tokio::test]
async fn doctor_fails_when_nothing_listens() {
    let closed = testkit::ClosedPort::new();
    let url = closed.url("/token");
    let report = run_doctor(&url, &[]).await;
    assert!(!report.usable);
    assert!(report.unusable_because.unwrap().contains("did not answer"));
}

#[tokio::test]
async fn the_bridge_example_traces_and_counts_on_its_admin_port_without_leaking_sentinels() {
    let upstream = FakeUpstream::salesforce().await;
    let binary = env!("CARGO_BIN_EXE_bridge");
    // The admin listener binds the address it is given, so the port is a guess: when another
    // server took it meanwhile the bridge exits saying so, and another port is tried.
    let (mut bridge, admin) = testkit::net::start_until_bound(|port| {
        let admin = format!("127.0.0.1:{port}");
        let started = BridgeProcess::spawn(
            std::process::Command::new(binary)
                .args([
                    "--listen",
                    "127.0.0.1:0",
                    "--upstream-token-url",
                    &upstream.token_url(),
                    "--trace-exchanges",
                    "--log-format",
                    "json",
                    "--metrics",
                    "--metrics-listen",
                    &admin,
                    "--upstream-timeout",
                    "5",
                ])
                // Warnings, the trace (on by --trace-exchanges) and the startup lines.
                .env("RUST_LOG", "warn,bridge=info")
                .stdout(std::process::Stdio::null()),
        );
        match started {
            Ok(bridge) => Ok((bridge, admin)),
            Err(failed) if failed.log.contains("cannot serve metrics") => Err(failed.log),
            Err(failed) => panic!("the bridge did not start:\n{}", failed.log),
        }
    });
    let base = bridge.base().to_string();
    let form = "application/x-www-form-urlencoded";
    let ok = support::post(
        &format!("{base}/token"),
        &[("content-type", form)],
        code_form(),
    )
    .await;
    assert_eq!(ok.status, 200);
    let refused = support::post(
        &format!("{base}/token"),
        &[("content-type", form)],
        format!("grant_type=refresh_token&client_secret={SECRET}"),
    )
    .await;
    assert_eq!(refused.status, 400);
    // Alexa's port serves no metrics: they are on the admin listener only.
    let public = support::send(
        Request::get(format!("{base}/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(public.status, 404);
    assert!(!String::from_utf8_lossy(&public.body).contains("account_link_bridge_"));
    let metrics = support::send(
        Request::get(format!("http://{admin}/metrics"))
            .body(Full::new(Bytes::new()))
            .unwrap(),
    )
    .await;
    assert_eq!(metrics.status, 200);
    let metrics = String::from_utf8(metrics.body.to_vec()).unwrap();
    assert!(
        metrics.contains(
            r#"account_link_bridge_exchanges_total{grant_type="authorization_code",outcome="token"} 1"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"account_link_bridge_refusals_total{reason="invalid_request"} 1"#));
    assert_no_sentinel(&metrics);

    // Two trace records: the exchange and the refusal.
    for _ in 0..2 {
        bridge.expect_line("account_link_bridge::trace");
    }
    bridge.kill();
    let log = bridge.log().join("\n");
    assert!(log.contains("--upstream-timeout is 5 s"), "{log}");
    assert!(log.contains(r#""outcome":"token""#), "{log}");
    assert!(log.contains(r#""outcome":"refused""#), "{log}");
    assert!(log.contains(r#""fingerprints":"code="#), "{log}");
    assert_no_sentinel(&log);
}

#[test]
fn metrics_without_an_admin_listener_are_refused_at_startup() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
        .args(["--listen", "127.0.0.1:0", "--metrics"])
        .env_remove("BRIDGE_METRICS_LISTEN")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("--metrics needs --metrics-listen"),
        "{stderr}"
    );
}

// ---- refusals of states and sealed codes, as the running bridge logs them ----

/// Starts `bridge` with `args` at the default log level (INFO) and waits until it serves.
fn running_bridge(args: &[&str]) -> BridgeProcess {
    BridgeProcess::start(
        std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null()),
    )
}

async fn get(url: &str) -> support::Reply {
    support::send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

#[tokio::test(flavor = "multi_thread")]
async fn replicas_without_a_shared_state_key_say_so_at_info_without_a_secret() {
    const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";
    // Two replicas of one deployment (same public URL, same upstream) with keys of their own,
    // as after forgetting to share --state-key. Nothing listens upstream: neither route below
    // calls it.
    let replica = |key: &str| {
        running_bridge(&[
            "--upstream-token-url",
            "http://127.0.0.1:9/services/oauth2/token",
            "--upstream-authorize-url",
            "http://127.0.0.1:9/services/oauth2/authorize",
            "--public-url",
            "https://bridge.example.com",
            "--alexa-vendor-id",
            "M3BVP74N95SP1F",
            "--state-key",
            key,
        ])
    };
    let a = replica("QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE=");
    let mut b = replica("QkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkI=");

    // The state A sealed reaches B's /callback: refused, and B says why at INFO.
    let mut authorize = url::Url::parse(&format!("{}/authorize", a.base())).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", "alexa")
        .append_pair("state", "alexa-state")
        .append_pair("redirect_uri", ALEXA);
    let to_upstream = get(authorize.as_str()).await;
    assert_eq!(to_upstream.status, 302);
    let upstream = url::Url::parse(to_upstream.header("location").unwrap()).unwrap();
    let state = query(&upstream, "state");
    let callback = |base: &str| {
        let mut url = url::Url::parse(&format!("{base}/callback")).unwrap();
        url.query_pairs_mut()
            .append_pair("code", CODE)
            .append_pair("state", &state);
        url.to_string()
    };
    let refused = get(&callback(b.base())).await;
    assert_eq!(refused.status, 400);
    let line = b.expect_line("state at /callback refused");
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains(r#"verdict="tampered_or_wrong_key""#),
        "{line}"
    );
    assert!(
        line.contains("sealed with another key: replicas must share --state-key (BRIDGE_STATE_KEY), or the bridge restarted without --state-key"),
        "{line}"
    );

    // A's callback hands Alexa a sealed code; redeemed at B's /token, it is refused the same way.
    let to_alexa = get(&callback(a.base())).await;
    assert_eq!(to_alexa.status, 302);
    let sealed_code = query(
        &url::Url::parse(to_alexa.header("location").unwrap()).unwrap(),
        "code",
    );
    let token = support::post(
        &format!("{}/token", b.base()),
        &[("content-type", "application/x-www-form-urlencoded")],
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("grant_type", "authorization_code")
            .append_pair("code", &sealed_code)
            .append_pair("redirect_uri", ALEXA)
            .append_pair("client_id", "alexa")
            .append_pair("client_secret", SECRET)
            .finish(),
    )
    .await;
    assert_eq!(token.status, 400);
    assert_eq!(token.oauth_error(), "invalid_grant");
    let line = b.expect_line("sealed code at /token refused");
    assert!(line.contains(" INFO "), "{line}");
    assert!(
        line.contains(r#"verdict="tampered_or_wrong_key""#),
        "{line}"
    );
    assert!(
        line.contains("replicas must share --state-key (BRIDGE_STATE_KEY)"),
        "{line}"
    );
    // The exchange's own line, as the text format writes it (its lean path: same bytes as
    // tracing-subscriber's `Full`).
    let line = b.expect_line("token exchange");
    let (stamp, rest) = line.split_at(27);
    assert!(
        stamp.ends_with('Z') && stamp.as_bytes()[19] == b'.',
        "{line}"
    );
    let rest = rest
        .strip_prefix(
            "  INFO account_link_bridge::exchange: token exchange grant_type=\"authorization_code\" \
             outcome=\"refused\" error=\"invalid_grant\" status=400 latency_us=",
        )
        .unwrap_or_else(|| panic!("{line}"));
    assert!(rest.parse::<u64>().is_ok(), "{line}");

    // A replayed state is named as such at its replica.
    let mut a = a;
    let again = get(&callback(a.base())).await;
    assert_eq!(again.status, 400);
    let line = a.expect_line("state at /callback refused");
    assert!(line.contains("refused: already used"), "{line}");
    assert!(line.contains(r#"verdict="replayed""#), "{line}");

    let log = format!("{}\n{}", a.log().join("\n"), b.log().join("\n"));
    assert_no_sentinel(&log);
    assert!(!log.contains(&state), "the sealed state was logged");
    assert!(
        !log.contains(&sealed_code[5..]),
        "the sealed code was logged"
    );
}

// ---- bridge doctor: the verdict agrees with the lists ----

/// Runs `bridge doctor` with `args`, as a table and as JSON: (exit code, table, JSON report).
async fn doctor_binary(args: &[&str]) -> (Option<i32>, String, serde_json::Value) {
    let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    let run = move |json: bool| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bridge"));
        command
            .arg("doctor")
            .args(&args)
            .args(["--client-secret", SECRET])
            .env_remove("BRIDGE_UPSTREAM_TOKEN_URL")
            .env_remove("BRIDGE_UPSTREAM_AUTHORIZE_URL")
            .env_remove("BRIDGE_PROVIDER");
        if json {
            command.arg("--json");
        }
        command
    };
    let (table, json) = tokio::task::spawn_blocking(move || {
        (run(false).output().unwrap(), run(true).output().unwrap())
    })
    .await
    .unwrap();
    let stdout = String::from_utf8(table.stdout).unwrap();
    assert_no_sentinel(&stdout);
    assert_no_sentinel(&String::from_utf8_lossy(&table.stderr));
    assert_eq!(table.status.code(), json.status.code(), "{stdout}");
    let report: serde_json::Value = serde_json::from_slice(&json.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&json.stderr)));
    assert_no_sentinel(&report.to_string());
    (table.status.code(), stdout, report)
}

fn verdict_line(table: &str) -> &str {
    table
        .lines()
        .find(|l| l.starts_with("verdict: "))
        .unwrap_or_else(|| panic!("no verdict in:\n{table}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_says_nothing_of_tls_or_a_preset_for_a_host_it_could_not_reach() {
    let closed = testkit::ClosedPort::new();
    let addr = closed.addr();
    // A Salesforce-looking https URL: the host name and path alone suggest nothing.
    for url in [
        format!("https://{addr}/services/oauth2/token"),
        format!("http://{addr}/services/oauth2/token"),
    ] {
        let (code, table, report) = doctor_binary(&["--upstream-token-url", &url]).await;
        assert_eq!(code, Some(1), "{table}");
        for row in [
            "TLS",
            "suggested provider",
            "credentials",
            "Accept:",
            "latency",
        ] {
            assert!(
                !table.lines().any(|l| l.starts_with(row)),
                "{row} for an unreachable host:\n{table}"
            );
        }
        assert!(
            !table.contains("nothing found that would break Alexa"),
            "{table}"
        );
        let verdict = verdict_line(&table);
        assert!(
            verdict.starts_with("verdict: UNREACHABLE: the upstream did not answer"),
            "{verdict}"
        );
        assert!(!verdict.contains("usable"), "{verdict}");
        assert_eq!(report["reached"], false);
        assert_eq!(report["verdict"], "unreachable");
        assert_eq!(report["tls"], "unknown");
        assert_eq!(report["suggested_provider"], "unknown");
        assert_eq!(report["problems"], serde_json::json!([]));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_names_the_fix_instead_of_usable_when_the_answers_would_break_alexa() {
    // GitHub-like: errors in a 200, forms unless JSON is asked for.
    let upstream = FakeUpstream::start(|seen: &Seen| {
        if seen.header("accept") == Some("application/json") {
            Answer::json(200, r#"{"error":"bad_verification_code"}"#)
        } else {
            Answer {
                status: 200,
                content_type: "application/x-www-form-urlencoded",
                body: "error=bad_verification_code".into(),
            }
        }
    })
    .await;
    let url = format!("http://{}/login/oauth/access_token", upstream.addr);
    // Configured as Salesforce (the default): every exchange would break.
    let (code, table, report) = doctor_binary(&["--upstream-token-url", &url]).await;
    assert_eq!(code, Some(1), "{table}");
    assert!(table.contains("would break Alexa:"), "{table}");
    assert!(
        table.contains("to fix:\n  - use --provider github"),
        "{table}"
    );
    let verdict = verdict_line(&table);
    assert!(!verdict.contains("usable"), "{verdict}");
    assert!(verdict.starts_with("verdict: NOT READY"), "{verdict}");
    assert!(verdict.contains("use --provider github"), "{verdict}");
    assert_eq!(report["verdict"], "fix_first");
    assert_eq!(report["ready"], false);
    assert_eq!(report["usable"], true);
    assert_eq!(
        report["fixes"],
        serde_json::json!(["use --provider github"])
    );

    // With the fix applied, the same upstream is clean.
    let (code, table, report) =
        doctor_binary(&["--upstream-token-url", &url, "--provider", "github"]).await;
    assert_eq!(code, Some(0), "{table}");
    assert_eq!(verdict_line(&table), "verdict: usable");
    assert!(!table.contains("would break Alexa:"), "{table}");
    assert!(
        table.contains("nothing found that would break Alexa"),
        "{table}"
    );
    assert_eq!(report["verdict"], "usable");
}

#[tokio::test(flavor = "multi_thread")]
async fn doctor_demo_probes_the_embedded_demo_upstream_in_one_command() {
    let (code, table, report) = doctor_binary(&["--demo"]).await;
    assert_eq!(code, Some(0), "{table}");
    assert_eq!(verdict_line(&table), "verdict: usable", "{table}");
    assert!(
        table.contains("nothing found that would break Alexa"),
        "{table}"
    );
    assert_eq!(report["verdict"], "usable");
    assert_eq!(report["suggested_provider"], "salesforce");
    assert_eq!(report["credentials"], "body");
    assert_eq!(report["problems"], serde_json::json!([]));
    // The demo refused the probe code as Salesforce does, and its authorization URL answered.
    assert_eq!(report["probes"][0]["error"], "invalid_grant");
    assert_eq!(report["authorize"], "HTTP 400 (answers)");
    let probed = report["token_url"].as_str().unwrap();
    assert!(probed.starts_with("http://127.0.0.1:"), "{probed}");
    assert!(probed.ends_with("/services/oauth2/token"), "{probed}");
}

//! The axum example, run as the README says (`cargo run --example axum --features axum,verify`:
//! the binary cargo built), and its app over loopback: the printed curl gets a packed token, the
//! middleman's `/authorize` → upstream → `/callback` → `/token` links, and the skill route
//! answers a request signed as Alexa signs them (a test PKI's) and refuses any other.
#![cfg(all(feature = "axum", feature = "verify"))]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::Request;
use http_body_util::Full;
use serde_json::{json, Value};
use testkit::oidc::query;
use testkit::{post, AlexaSigningPki, Reply};
use time::format_description::well_known::Rfc3339;

#[allow(dead_code)]
#[path = "../../examples/axum.rs"]
mod example;

const SKILL_ID: &str = "amzn1.ask.skill.00000000-aaaa-bbbb-cccc-000000000042";
const CHAIN_URL: &str = "https://s3.amazonaws.com/echo.api/echo-api-cert.pem";
const ALEXA_REDIRECT: &str = "https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA";

/// The example binary `cargo test` built beside this test binary
/// (`target/<profile>/examples/axum`).
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let profile_dir = exe.parent().and_then(|deps| deps.parent()).unwrap();
    let binary = profile_dir.join("examples").join("axum");
    assert!(
        binary.exists(),
        "{} is missing: `cargo test --all-features` builds it (or `cargo build --example axum --features axum,verify`)",
        binary.display()
    );
    binary
}

/// The running example: its base URL and everything it printed.
struct RunningExample {
    child: Child,
    base: String,
    output: Arc<Mutex<String>>,
    curl: String,
}

impl Drop for RunningExample {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl RunningExample {
    /// Starts the example with no upstream configured (its demo upstream), a free port, the
    /// skill id pinned and the test PKI's root and chain.
    fn start(pki: &AlexaSigningPki) -> RunningExample {
        let dir = std::env::temp_dir().join(format!("axum-example-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let root = dir.join("root.pem");
        let chain = dir.join("chain.pem");
        std::fs::write(&root, &pki.root_pem).unwrap();
        std::fs::write(&chain, pki.chain_pem()).unwrap();
        let mut command = Command::new(example_binary());
        for (name, _) in std::env::vars() {
            if name.starts_with("BRIDGE_") || name.starts_with("ALEXA_") {
                command.env_remove(name);
            }
        }
        let mut child = command
            .env("EXAMPLE_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "info")
            .env("ALEXA_SKILL_ID", SKILL_ID)
            .env("ALEXA_VERIFY_TEST_ROOT", &root)
            .env("ALEXA_VERIFY_TEST_CHAIN", &chain)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let output = Arc::new(Mutex::new(String::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let output = Arc::clone(&output);
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    let mut output = output.lock().unwrap();
                    output.push_str(&line);
                    output.push('\n');
                }
            });
        }
        // Owned (killed and waited for on drop) before anything below can panic.
        let mut example = RunningExample {
            child,
            base: String::new(),
            output,
            curl: String::new(),
        };
        let started = Instant::now();
        loop {
            let printed = example.output();
            let base = printed
                .lines()
                .find_map(|l| l.strip_prefix("listening on "))
                .map(str::to_string);
            let curl = printed
                .lines()
                .find_map(|l| l.strip_prefix("try: "))
                .map(str::to_string);
            if let (Some(base), Some(curl)) = (base, curl) {
                example.base = base;
                example.curl = curl;
                return example;
            }
            assert!(
                started.elapsed() < Duration::from_secs(30),
                "the example did not start:\n{printed}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn output(&self) -> String {
        self.output.lock().unwrap().clone()
    }

    /// Waits until the output has a line with all of `words`.
    async fn wait_for_line(&self, words: &[&str]) -> String {
        let started = Instant::now();
        loop {
            let output = self.output();
            if let Some(line) = output.lines().find(|l| words.iter().all(|w| l.contains(w))) {
                return line.to_string();
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "no line with {words:?} in:\n{output}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// An Alexa `IntentRequest` for `skill_id` carrying `access_token`, stamped now.
fn intent_request(skill_id: &str, access_token: Option<&str>) -> String {
    let timestamp = time::OffsetDateTime::now_utc().format(&Rfc3339).unwrap();
    let mut user = json!({"userId": "amzn1.ask.account.A"});
    if let Some(token) = access_token {
        user["accessToken"] = json!(token);
    }
    json!({
        "version": "1.0",
        "session": {"new": true, "sessionId": "amzn1.echo-api.session.1",
                    "application": {"applicationId": skill_id}, "user": user.clone()},
        "context": {"System": {"application": {"applicationId": skill_id}, "user": user}},
        "request": {"type": "IntentRequest", "requestId": "amzn1.echo-api.request.1",
                    "timestamp": timestamp, "locale": "en-US",
                    "intent": {"name": "ListAccounts", "confirmationStatus": "NONE"}}
    })
    .to_string()
}

/// Sends `body` to the skill route, signed with the test PKI's key when `signed`.
async fn call_skill(base: &str, body: &str, signed: bool) -> Reply {
    let signature = AlexaSigningPki::sign(body.as_bytes());
    let mut headers = vec![("content-type", "application/json")];
    if signed {
        headers.push(("SignatureCertChainUrl", CHAIN_URL));
        headers.push(("Signature-256", &signature));
    }
    post(&format!("{base}/alexa"), &headers, body.to_string()).await
}

async fn get(url: &str) -> Reply {
    testkit::send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
}

fn location(reply: &Reply) -> String {
    assert_eq!(reply.status, 302, "{:?}", reply.body);
    reply.headers["location"].to_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_example_runs_as_the_readme_says_and_answers_a_request_alexa_signed() {
    let pki = AlexaSigningPki::new();
    let example = RunningExample::start(&pki);
    let output = example.output();
    assert!(
        output.contains("started a Salesforce-like demo upstream"),
        "{output}"
    );
    assert!(
        output.contains("serving GET /authorize, GET /callback, POST /token, POST /alexa"),
        "{output}"
    );

    // The printed curl, as a user would paste it.
    let (url, form) = {
        let rest = example
            .curl
            .strip_prefix("curl -s -X POST ")
            .expect("a curl POST");
        let (url, form) = rest.split_once(" -d ").unwrap();
        (url.to_string(), form.trim_matches('\'').to_string())
    };
    assert_eq!(url, format!("{}/token", example.base));
    let token = post(
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        form,
    )
    .await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    let access_token = token.json()["access_token"].as_str().unwrap().to_string();
    assert_eq!(token.json()["expires_in"], 5400);
    assert!(
        access_token.ends_with(" https://demo.my.salesforce.com"),
        "{access_token}"
    );
    let line = example
        .wait_for_line(&["account_link_bridge::exchange", "token exchange"])
        .await;
    assert!(line.contains("outcome") && line.contains("token"), "{line}");
    assert!(!line.contains(".demo-access-token"), "{line}");

    // Alexa calls the skill with that token, signed: a real Alexa response.
    let body = intent_request(SKILL_ID, Some(&access_token));
    let reply = call_skill(&example.base, &body, true).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["version"], "1.0");
    assert_eq!(
        answer["response"]["outputSpeech"]["text"],
        format!(
            "Linked. I would call https://demo.my.salesforce.com with a token of {} characters.",
            "00Dx0000000BV7z!AR8AQ.demo-access-token".len()
        )
    );

    // Anything Alexa did not sign, or signed for another skill, never reaches the handler.
    let unsigned = call_skill(&example.base, &body, false).await;
    assert_eq!(unsigned.status, 400);
    assert_eq!(unsigned.json()["error"], "alexa_request_not_verified");
    let other_skill = intent_request("amzn1.ask.skill.another", Some(&access_token));
    let refused = call_skill(&example.base, &other_skill, true).await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["rule"], "skill_id");
    let mut tampered = body.clone().into_bytes();
    let at = tampered.iter().position(|b| *b == b'L').unwrap();
    tampered[at] = b'l';
    let signature = AlexaSigningPki::sign(body.as_bytes());
    let changed = post(
        &format!("{}/alexa", example.base),
        &[
            ("content-type", "application/json"),
            ("SignatureCertChainUrl", CHAIN_URL),
            ("Signature-256", &signature),
        ],
        tampered,
    )
    .await;
    assert_eq!(changed.status, 400);
    assert_eq!(changed.json()["rule"], "signature");

    // A user who has not linked gets the link-account card, from a signed request too.
    let unlinked = call_skill(&example.base, &intent_request(SKILL_ID, None), true).await;
    assert_eq!(unlinked.status, 200);
    assert_eq!(unlinked.json()["response"]["card"]["type"], "LinkAccount");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_examples_middleman_links_through_authorize_callback_and_token() {
    let pki = AlexaSigningPki::new();
    let example = RunningExample::start(&pki);

    // Alexa opens /authorize in the user's browser.
    let authorize = format!(
        "{}/authorize?response_type=code&client_id=alexa&state=alexa-state&redirect_uri={}",
        example.base,
        url::form_urlencoded::byte_serialize(ALEXA_REDIRECT.as_bytes()).collect::<String>()
    );
    let to_upstream = location(&get(&authorize).await);
    assert_eq!(
        query(&to_upstream)["redirect_uri"],
        format!("{}/callback", example.base)
    );
    assert_eq!(query(&to_upstream)["code_challenge_method"], "S256");
    // The demo upstream signs the user in at once and sends the browser to /callback.
    let to_callback = location(&get(&to_upstream).await);
    assert!(to_callback.starts_with(&format!("{}/callback?", example.base)));
    let to_alexa = location(&get(&to_callback).await);
    assert!(to_alexa.starts_with(ALEXA_REDIRECT), "{to_alexa}");
    assert_eq!(query(&to_alexa)["state"], "alexa-state");
    let code = query(&to_alexa)["code"].clone();
    assert_ne!(
        code, "demo-code",
        "the upstream's code is sealed, not shown"
    );

    // Alexa redeems the code at /token.
    let form = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", ALEXA_REDIRECT),
        ("client_id", "alexa"),
        ("client_secret", "demo-secret"),
    ])
    .unwrap();
    let token = post(
        &format!("{}/token", example.base),
        &[("content-type", "application/x-www-form-urlencoded")],
        form.clone(),
    )
    .await;
    assert_eq!(token.status, 200, "{:?}", token.body);
    assert!(token.json()["access_token"]
        .as_str()
        .unwrap()
        .ends_with(" https://demo.my.salesforce.com"));

    // Another redirect_uri than the one sealed is refused.
    let wrong = form.replace("layla.amazon.com", "pitangui.amazon.com");
    let refused = post(
        &format!("{}/token", example.base),
        &[("content-type", "application/x-www-form-urlencoded")],
        wrong,
    )
    .await;
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["error"], "invalid_grant");
}

#[tokio::test]
async fn the_examples_app_refuses_an_unsigned_request_before_the_skill() {
    // In process: the app with its own demo upstream and the test PKI.
    let pki = AlexaSigningPki::new();
    let demo = example::start_demo_upstream().await;
    let verifier = account_link_bridge::skill::verify::AlexaRequestVerifier::new()
        .skill_ids([SKILL_ID])
        .root_certificates_pem(pki.root_pem.as_bytes())
        .unwrap()
        .fetcher(account_link_bridge::skill::verify::FixedChainFetcher::new(
            pki.chain_pem(),
        ));
    let addr = testkit::serve_axum(example::app(example::Settings {
        upstream_token_url: format!("http://{demo}/services/oauth2/token"),
        upstream_authorize_url: format!("http://{demo}/services/oauth2/authorize"),
        public_url: "http://127.0.0.1:1".into(),
        sealer: account_link_bridge::StateSealer::random(),
        alexa_vendor_ids: vec!["M2AAAAAAAAAAAA".into()],
        verifier,
    }))
    .await;
    let base = format!("http://{addr}");
    let body = intent_request(SKILL_ID, Some("00Dx0!AR8AQ https://na1.salesforce.com"));
    let signed = call_skill(&base, &body, true).await;
    assert_eq!(signed.status, 200, "{:?}", signed.body);
    let answer: Value = signed.json();
    assert!(answer["response"]["outputSpeech"]["text"]
        .as_str()
        .unwrap()
        .contains("https://na1.salesforce.com"));
    let unsigned = call_skill(&base, &body, false).await;
    assert_eq!(unsigned.status, 400);
    assert_eq!(unsigned.json()["rule"], "signature_cert_chain_url_header");
    // The vendor pin holds: another skill's redirect URL gets no redirect.
    let foreign = get(&format!(
        "{base}/authorize?response_type=code&state=s&redirect_uri={}",
        url::form_urlencoded::byte_serialize(
            b"https://layla.amazon.com/api/skill/link/MOTHERSKILL"
        )
        .collect::<String>()
    ))
    .await;
    assert_eq!(foreign.status, 400);
}

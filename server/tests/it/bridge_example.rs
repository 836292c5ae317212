//! The `bridge` binary as a newcomer runs it: a real process, its printed curl command, and a
//! graceful shutdown on SIGTERM.

use testkit as support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use account_link_bridge::PackedToken;
use support::process::BridgeProcess;
use support::{post, FakeUpstream};

struct Bridge {
    process: BridgeProcess,
    stdout_lines: Vec<String>,
    base: String,
}

impl Bridge {
    /// Starts the example and waits for it to log where it serves.
    fn start(args: &[&str]) -> Bridge {
        let process = BridgeProcess::start(
            Command::new(env!("CARGO_BIN_EXE_bridge"))
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                .env("RUST_LOG", "info")
                .stdout(Stdio::piped()),
        );
        let base = process.base().to_string();
        Bridge {
            process,
            stdout_lines: Vec::new(),
            base,
        }
    }

    fn read_stdout_until_blank_after_curl(&mut self) {
        let stdout = BufReader::new(self.process.child_mut().stdout.take().unwrap());
        let mut seen_curl = false;
        for line in stdout.lines().map_while(Result::ok) {
            seen_curl |= line.contains("curl");
            let done = seen_curl && line.trim().is_empty();
            self.stdout_lines.push(line);
            if done {
                break;
            }
        }
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let status = Command::new("kill")
            .args(["-TERM", &self.process.pid().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.process.child_mut().wait().unwrap()
    }
}

#[tokio::test]
async fn the_run_command_serves_the_printed_curl_exchange_against_the_demo_upstream() {
    let mut bridge = Bridge::start(&[]);
    bridge.read_stdout_until_blank_after_curl();
    let printed = bridge.stdout_lines.join("\n");
    assert!(printed.contains("demo upstream"), "{printed}");

    // The printed command: POST JSON with the Content-Type header removed.
    let data = printed
        .split("-d '")
        .nth(1)
        .unwrap()
        .split('\'')
        .next()
        .unwrap()
        .to_string();
    let url = format!("{}/token", bridge.base);
    assert!(printed.contains(&url), "{printed}");
    let reply = post(&url, &[], data).await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["expires_in"], 5400);
    let token = PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(token.instance_url(), Some("https://demo.my.salesforce.com"));
    assert!(answer["refresh_token"].as_str().is_some());

    assert!(bridge.terminate().success());
}

#[tokio::test(flavor = "multi_thread")]
async fn sigterm_lets_an_in_flight_exchange_finish_then_exits_zero() {
    let upstream = FakeUpstream::salesforce()
        .delay(Duration::from_millis(1500))
        .access_token("slow")
        .instance_url("https://x.my.salesforce.com")
        .await;
    let mut bridge = Bridge::start(&["--upstream-token-url", &upstream.token_url()]);
    let url = format!("{}/token", bridge.base);

    let in_flight = tokio::spawn(async move {
        post(
            &url,
            &[],
            "grant_type=authorization_code&code=c&client_id=a&client_secret=s",
        )
        .await
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let status = tokio::task::spawn_blocking(move || bridge.terminate())
        .await
        .unwrap();

    let reply = in_flight.await.unwrap();
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json()["access_token"],
        "slow https://x.my.salesforce.com"
    );
    assert!(status.success(), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(10));
}

/// Follows one redirect by hand, as a browser would, and returns the `Location`.
async fn location_of(url: &str) -> String {
    let reply = support::send(http::Request::get(url).body(Default::default()).unwrap()).await;
    assert_eq!(reply.status, 302, "{url}: {:?}", reply.body);
    reply.header("location").unwrap().to_string()
}

#[tokio::test]
async fn alexas_whole_linking_flow_works_through_the_example_and_its_demo_upstream() {
    let bridge = Bridge::start(&[
        "--state-key",
        "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
    ]);
    let alexa = "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA";
    let authorize = format!(
        "{}/authorize?{}",
        bridge.base,
        serde_urlencoded::to_string([
            ("state", "alexa-state-1"),
            ("client_id", "alexa"),
            ("response_type", "code"),
            ("scope", "api refresh_token"),
            ("redirect_uri", alexa),
        ])
        .unwrap()
    );

    let to_upstream = location_of(&authorize).await;
    assert!(
        to_upstream.contains("/services/oauth2/authorize?"),
        "{to_upstream}"
    );
    let to_callback = location_of(&to_upstream).await;
    assert!(
        to_callback.starts_with(&format!("{}/callback?", bridge.base)),
        "{to_callback}"
    );
    let to_alexa = location_of(&to_callback).await;
    assert!(to_alexa.starts_with(alexa), "{to_alexa}");
    let query: Vec<(String, String)> =
        serde_urlencoded::from_str(to_alexa.split_once('?').unwrap().1).unwrap();
    let get = |n: &str| query.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(get("state"), "alexa-state-1");

    // Alexa's token request, with its own redirect_uri, as the console sends it.
    let body = serde_urlencoded::to_string([
        ("grant_type", "authorization_code"),
        ("code", get("code").as_str()),
        ("redirect_uri", alexa),
        ("client_id", "alexa"),
        ("client_secret", "demo-secret"),
    ])
    .unwrap();
    let reply = post(
        &format!("{}/token", bridge.base),
        &[("content-type", "application/x-www-form-urlencoded")],
        body,
    )
    .await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
    let answer = reply.json();
    assert_eq!(answer["expires_in"], 5400);
    let token = PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(token.instance_url(), Some("https://demo.my.salesforce.com"));
}

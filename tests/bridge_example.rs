//! The `bridge` example as a newcomer runs it: a real process, its printed curl command, and a
//! graceful shutdown on SIGTERM.

mod support;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use account_link_bridge::PackedToken;
use support::{post, Answer, MockUpstream};

/// The example binary, built if this test runs alone.
fn example_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let binary = dir.join("examples").join("bridge");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "bridge"])
            .status()
            .unwrap();
        assert!(status.success());
    }
    binary
}

struct Bridge {
    child: Child,
    stdout_lines: Vec<String>,
    base: String,
}

impl Bridge {
    /// Starts the example and waits for it to print where it serves.
    fn start(args: &[&str]) -> Bridge {
        let mut child = Command::new(example_binary())
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stderr = BufReader::new(child.stderr.take().unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stderr.lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let mut base = None;
        while base.is_none() {
            let line = rx
                .recv_timeout(Duration::from_secs(30))
                .expect("the bridge logs its address");
            if let Some(rest) = line.split("bridge serving POST ").nth(1) {
                let url = rest.split_whitespace().next().unwrap();
                base = Some(url.trim_end_matches("/token").to_string());
            }
        }
        std::thread::spawn(move || for _ in rx {});
        Bridge {
            child,
            stdout_lines: Vec::new(),
            base: base.unwrap(),
        }
    }

    fn read_stdout_until_blank_after_curl(&mut self) {
        let stdout = BufReader::new(self.child.stdout.take().unwrap());
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
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        self.child.wait().unwrap()
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
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
    let upstream = MockUpstream::start(|_| {
        std::thread::sleep(Duration::from_millis(1500));
        Answer::json(
            200,
            r#"{"access_token":"slow","instance_url":"https://x.my.salesforce.com"}"#,
        )
    })
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

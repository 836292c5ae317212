//! Load and abuse against the `bridge` example as a separate process, over loopback.
//!
//! The default run is a short smoke (2,000 exchanges at 32 connections). The long run is one
//! command, with its last results in SECURITY.md:
//!
//! ```text
//! cargo build --release --example bridge
//! LOAD_EXCHANGES=100000 LOAD_CONNECTIONS=256 LOAD_BRIDGE_BIN=target/release/examples/bridge \
//!     cargo test --release --test load -- --nocapture load_
//! ```

mod support;

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use account_link_bridge::bridge::Bridge;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use support::MockUpstream;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct BridgeProcess {
    child: Child,
    addr: String,
}

impl BridgeProcess {
    fn start(args: &[&str]) -> BridgeProcess {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let binary = std::env::var("LOAD_BRIDGE_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| support::example_binary("bridge"));
        let child = Command::new(binary)
            .args(["--listen", &addr])
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the bridge did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        BridgeProcess { child, addr }
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

impl Drop for BridgeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_every_exchange_is_answered_correctly_and_memory_stays_flat() {
    let exchanges = env_or("LOAD_EXCHANGES", 2_000);
    let connections = env_or("LOAD_CONNECTIONS", 32);
    let upstream = MockUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&["--upstream-token-url", &upstream.token_url()]);

    let issued = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(Mutex::new(Vec::<String>::new()));
    let rss = Arc::new(Mutex::new((0u64, 0u64)));
    let started = Instant::now();
    let mut clients = Vec::new();
    for _ in 0..connections {
        let (issued, done, failures, rss) =
            (issued.clone(), done.clone(), failures.clone(), rss.clone());
        let addr = bridge.addr.clone();
        let pid = bridge.child.id();
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            while issued.fetch_add(1, Ordering::Relaxed) < exchanges {
                let request = Request::post(format!("http://{addr}/token"))
                    .header("host", addr.as_str())
                    .body(Full::new(Bytes::from_static(
                        br#"{"grant_type":"authorization_code","code":"load-code","client_id":"alexa","client_secret":"s"}"#,
                    )))
                    .unwrap();
                let outcome = match sender.send_request(request).await {
                    Ok(response) => check(response).await,
                    Err(e) => Err(format!("transport: {e}")),
                };
                if let Err(failure) = outcome {
                    failures.lock().unwrap().push(failure);
                }
                let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                if n == exchanges / 10 || n == exchanges * 9 / 10 {
                    let kib = read_rss(pid);
                    let mut rss = rss.lock().unwrap();
                    if n == exchanges / 10 { rss.0 = kib } else { rss.1 = kib }
                }
            }
        }));
    }
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = started.elapsed();
    let failures = failures.lock().unwrap();
    let (first, last) = *rss.lock().unwrap();
    println!(
        "load: {exchanges} exchanges at {connections} connections in {elapsed:.2?} ({:.0}/s), {} failures, bridge RSS {first} KiB at the first tenth, {last} KiB at the last, {} KiB at the end",
        exchanges as f64 / elapsed.as_secs_f64(),
        failures.len(),
        bridge.rss_kib()
    );
    assert!(
        failures.is_empty(),
        "{} failures, first: {:?}",
        failures.len(),
        failures.first()
    );
    assert_eq!(done.load(Ordering::Relaxed), exchanges);
    assert_eq!(
        upstream.seen().len(),
        exchanges,
        "every exchange reached the upstream once"
    );
    assert!(
        last <= first + first / 5 + 4096,
        "RSS grew from {first} KiB to {last} KiB"
    );
}

fn read_rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .map(|v| v.trim().trim_end_matches("kB").trim().to_string())
        })
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

async fn check(response: Response<hyper::body::Incoming>) -> Result<(), String> {
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| e.to_string())?
        .to_bytes();
    let answer: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("{status}: {e}"))?;
    let ok = status == 200
        && answer["expires_in"] == 5400
        && answer["access_token"]
            == "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9 https://na1.salesforce.com"
        && answer["refresh_token"].is_string();
    ok.then_some(())
        .ok_or_else(|| format!("{status}: {answer}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_do_not_stop_the_bridge_from_serving_others_and_are_cut_off() {
    let upstream = MockUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--header-read-timeout",
        "1",
    ]);

    // 300 slowloris connections: a partial head, then one byte at a time.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = TcpStream::connect(&bridge.addr).await.unwrap();
        stream
            .write_all(b"POST /token HTTP/1.1\r\nHost: bridge\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let drip = tokio::spawn(async move {
        let started = Instant::now();
        let mut open = slow.len();
        while open > 0 && started.elapsed() < Duration::from_secs(6) {
            open = 0;
            for stream in &mut slow {
                if stream.write_all(b"a").await.is_ok() {
                    open += 1;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        (open, started.elapsed())
    });

    // Meanwhile a genuine exchange is served at once.
    let started = Instant::now();
    let reply = support::post(
        &format!("http://{}/token", bridge.addr),
        &[("content-type", "application/x-www-form-urlencoded")],
        "grant_type=refresh_token&refresh_token=r&client_id=alexa&client_secret=s",
    )
    .await;
    assert_eq!(reply.status, 200);
    assert!(
        started.elapsed() < Duration::from_millis(900),
        "{:?}",
        started.elapsed()
    );

    // The slow connections were closed by the header-read timeout (writes then fail).
    let (still_open, after) = drip.await.unwrap();
    assert_eq!(
        still_open, 0,
        "{still_open} slow connections still open after {after:?}"
    );
}

#[tokio::test]
async fn overload_is_answered_503_json_at_once_not_queued() {
    let upstream = support::serve(|_request: Request<hyper::body::Incoming>| async move {
        tokio::time::sleep(Duration::from_millis(400)).await;
        Response::builder()
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from_static(
                br#"{"access_token":"t","instance_url":"https://x"}"#,
            )))
            .unwrap()
    })
    .await;
    let bridge = Bridge::new(
        Provider::salesforce(),
        Upstream::new(format!("http://{upstream}/token").parse().unwrap()),
    )
    .max_concurrent_exchanges(4);
    let base = support::serve_bridge(bridge).await;
    let mut exchanges = Vec::new();
    for _ in 0..20 {
        let url = format!("{base}/token");
        exchanges.push(tokio::spawn(async move {
            let started = Instant::now();
            let reply = support::post(
                &url,
                &[],
                r#"{"grant_type":"refresh_token","refresh_token":"r"}"#,
            )
            .await;
            (reply, started.elapsed())
        }));
    }
    let (mut served, mut shed) = (0, 0);
    for exchange in exchanges {
        let (reply, elapsed) = exchange.await.unwrap();
        match reply.status.as_u16() {
            200 => served += 1,
            503 => {
                assert_eq!(reply.oauth_error(), "temporarily_unavailable");
                assert!(
                    elapsed < Duration::from_millis(300),
                    "shed after {elapsed:?}"
                );
                shed += 1;
            }
            other => panic!("unexpected {other}"),
        }
    }
    assert_eq!(served + shed, 20);
    assert!(served >= 4, "{served} served");
    assert!(shed >= 8, "{shed} shed");
}

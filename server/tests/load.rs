//! Load and abuse against the `bridge` binary as a separate process, over loopback.
//!
//! The default run is a short smoke (2,000 exchanges at 32 connections). The long run is one
//! command, with its last results in SECURITY.md:
//!
//! ```text
//! LOAD_EXCHANGES=100000 LOAD_CONNECTIONS=256 \
//!     cargo test --release -p account-link-bridge-server --test load -- --nocapture load_
//! ```

use testkit as support;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use account_link_bridge_server::Bridge;
use bytes::Bytes;
use http::{Request, Response};
use http_body_util::{BodyExt, Full};
use support::FakeUpstream;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `bridge` binary, started on a port of its own choosing.
struct BridgeProcess {
    process: testkit::process::BridgeProcess,
    addr: String,
}

impl BridgeProcess {
    fn start(args: &[&str]) -> BridgeProcess {
        let binary = std::env::var("LOAD_BRIDGE_BIN")
            .map(std::path::PathBuf::from)
            .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_BIN_EXE_bridge")));
        // Port 0, read back from the log: a port probed and released here could be taken by
        // another test's server before the bridge binds it (it once was, in CI).
        let process = testkit::process::BridgeProcess::start(
            Command::new(binary)
                .args(["--listen", "127.0.0.1:0"])
                .args(args)
                // The startup lines only: the per-exchange line stays off under load.
                .env("RUST_LOG", "warn,bridge=info")
                .stdout(Stdio::null()),
        );
        let addr = process.addr().to_string();
        BridgeProcess { process, addr }
    }

    fn pid(&self) -> u32 {
        self.process.pid()
    }

    fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn load_every_exchange_is_answered_correctly_and_memory_stays_flat() {
    let exchanges = env_or("LOAD_EXCHANGES", 2_000);
    let connections = env_or("LOAD_CONNECTIONS", 32);
    let upstream = FakeUpstream::salesforce().await;
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
        let pid = bridge.pid();
        clients.push(tokio::spawn(async move {
            let stream = TcpStream::connect(&addr).await.unwrap();
            let (mut sender, connection) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await.unwrap();
            tokio::spawn(connection);
            loop {
                let n = issued.fetch_add(1, Ordering::Relaxed);
                if n >= exchanges {
                    break;
                }
                // A code of its own per exchange: a repeated code would be answered from the
                // refresh records without an upstream call.
                let request = Request::post(format!("http://{addr}/token"))
                    .header("host", addr.as_str())
                    .body(Full::new(Bytes::from(format!(
                        r#"{{"grant_type":"authorization_code","code":"load-code-{n}","client_id":"alexa","client_secret":"s"}}"#,
                    ))))
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
    let upstream = FakeUpstream::salesforce().await;
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
    let upstream = FakeUpstream::salesforce()
        .delay(Duration::from_millis(400))
        .await;
    let bridge = Bridge::new(
        Provider::salesforce(),
        Upstream::new(upstream.token_url().parse().unwrap()).max_concurrent_calls(4),
    );
    let base = support::serve_service(bridge).await;
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

const GENUINE_REFRESH: &str =
    "grant_type=refresh_token&refresh_token=r&client_id=alexa&client_secret=s";

/// A genuine exchange, as Alexa makes it, against the bridge at `addr`.
async fn genuine_exchange(addr: &str) -> support::Reply {
    support::post(
        &format!("http://{addr}/token"),
        &[("content-type", "application/x-www-form-urlencoded")],
        GENUINE_REFRESH,
    )
    .await
}

/// Whether the peer closes `stream` (end of stream or reset) within `within`, reading and
/// discarding whatever it sends first.
async fn closed_within<S: tokio::io::AsyncRead + Unpin>(stream: &mut S, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    tokio::time::timeout(within, async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await
    .is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_dripping_a_byte_at_a_time_hold_no_exchange_slot_and_are_cut_off() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--max-concurrent-exchanges",
        "2",
        "--body-read-timeout",
        "2",
    ]);

    // More slow bodies than exchange slots: complete headers, then a byte a second, each
    // connection's answer read as it comes.
    let mut slow = Vec::new();
    for _ in 0..6 {
        let mut stream = TcpStream::connect(&bridge.addr).await.unwrap();
        stream
            .write_all(b"POST /token HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 200\r\n\r\ng")
            .await
            .unwrap();
        let (mut reader, mut writer) = stream.into_split();
        let drip = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                if writer.write_all(b"r").await.is_err() {
                    return;
                }
            }
        });
        slow.push(tokio::spawn(async move {
            let mut answer = Vec::new();
            let read =
                tokio::time::timeout(Duration::from_secs(6), reader.read_to_end(&mut answer)).await;
            drip.abort();
            (read.is_ok(), String::from_utf8_lossy(&answer).into_owned())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Meanwhile a genuine exchange is served.
    let reply = genuine_exchange(&bridge.addr).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    // Each slow body is answered 400 JSON once its deadline passes, and its connection ends.
    for slow in slow {
        let (ended, answer) = slow.await.unwrap();
        assert!(ended, "a slow body's connection still open");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_h2c_stream_flood_of_bodiless_token_requests_does_not_stop_a_genuine_exchange() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--max-concurrent-exchanges",
        "4",
        "--body-read-timeout",
        "2",
    ]);

    // Several h2c connections, each opening many POST /token streams: headers, no DATA.
    let mut floods = Vec::new();
    let mut held_bodies = Vec::new();
    for _ in 0..4 {
        let stream = TcpStream::connect(&bridge.addr).await.unwrap();
        let (sender, connection) = hyper::client::conn::http2::handshake(
            hyper_util::rt::TokioExecutor::new(),
            hyper_util::rt::TokioIo::new(stream),
        )
        .await
        .unwrap();
        tokio::spawn(connection);
        for _ in 0..50 {
            let (body_sender, body) =
                http_body_util::channel::Channel::<Bytes, std::convert::Infallible>::new(1);
            held_bodies.push(body_sender);
            let request = Request::post(format!("http://{}/token", bridge.addr))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(body)
                .unwrap();
            let mut sender = sender.clone();
            floods.push(tokio::spawn(async move {
                sender.ready().await.ok()?;
                let response = sender.send_request(request).await.ok()?;
                Some(response.status().as_u16())
            }));
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;

    let reply = genuine_exchange(&bridge.addr).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);

    // The streams the bridge admitted were answered 400 at their body deadline, not served.
    let first_wave = tokio::time::timeout(Duration::from_secs(10), floods.remove(0))
        .await
        .expect("a flooding stream is answered within its body deadline")
        .unwrap();
    assert_eq!(first_wave, Some(400));
    drop(held_bodies);
    assert!(
        upstream.seen().len() == 1,
        "only the genuine exchange went upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_that_send_nothing_or_half_a_preface_are_closed_in_time() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--header-read-timeout",
        "1",
    ]);

    let mut silent = TcpStream::connect(&bridge.addr).await.unwrap();
    let mut half_h2 = TcpStream::connect(&bridge.addr).await.unwrap();
    half_h2.write_all(b"PRI * HTTP/2.0\r\n").await.unwrap();
    let mut half_h1 = TcpStream::connect(&bridge.addr).await.unwrap();
    half_h1
        .write_all(b"POST /token HTTP/1.1\r\nHo")
        .await
        .unwrap();

    for (name, stream) in [
        ("silent", &mut silent),
        ("half an HTTP/2 preface", &mut half_h2),
        ("half an HTTP/1.1 head", &mut half_h1),
    ] {
        assert!(
            closed_within(stream, Duration::from_secs(5)).await,
            "the {name} connection is still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_connections_are_closed_in_time_under_tls_too() {
    let upstream = FakeUpstream::salesforce().await;
    let pki = support::TestPki::new();
    let (cert, key) = pki.write_leaf();
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--header-read-timeout",
        "1",
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);

    // No TLS handshake at all.
    let mut silent = TcpStream::connect(&bridge.addr).await.unwrap();
    assert!(
        closed_within(&mut silent, Duration::from_secs(5)).await,
        "silent TCP still open"
    );

    // A completed handshake (h2 by ALPN), then nothing; then half an HTTP/2 preface.
    let mut client = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(pki.roots())
    .with_no_client_auth();
    client.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(client));
    for preface in [&b""[..], b"PRI * HTTP/2.0\r\n"] {
        let tcp = TcpStream::connect(&bridge.addr).await.unwrap();
        let mut tls = connector
            .connect("localhost".try_into().unwrap(), tcp)
            .await
            .unwrap();
        tls.write_all(preface).await.unwrap();
        tls.flush().await.unwrap();
        assert!(
            closed_within(&mut tls, Duration::from_secs(5)).await,
            "a TLS connection that sent {preface:?} is still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_alive_connections_idle_after_an_answer_are_closed_for_http1_and_http2() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--idle-timeout",
        "1",
    ]);

    let request = || {
        Request::post(format!("http://{}/token", bridge.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from_static(GENUINE_REFRESH.as_bytes())))
            .unwrap()
    };
    let stream = TcpStream::connect(&bridge.addr).await.unwrap();
    let (mut h1, h1_connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let h1_connection = tokio::spawn(h1_connection);
    assert_eq!(h1.send_request(request()).await.unwrap().status(), 200);

    let stream = TcpStream::connect(&bridge.addr).await.unwrap();
    let (mut h2, h2_connection) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let h2_connection = tokio::spawn(h2_connection);
    assert_eq!(h2.send_request(request()).await.unwrap().status(), 200);

    // Both client connection tasks end once the bridge closes the connections.
    for (name, connection) in [("HTTP/1.1", h1_connection), ("HTTP/2", h2_connection)] {
        assert!(
            tokio::time::timeout(Duration::from_secs(5), connection)
                .await
                .is_ok(),
            "the idle {name} connection is still open"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_the_cap_are_closed_at_accept_and_the_slot_comes_back() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--max-connections",
        "3",
        "--header-read-timeout",
        "30",
    ]);
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(&bridge.addr).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut shed = TcpStream::connect(&bridge.addr).await.unwrap();
    assert!(
        closed_within(&mut shed, Duration::from_secs(3)).await,
        "a connection past the cap was kept open (the header timeout is 30 s)"
    );

    drop(held);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let reply = genuine_exchange(&bridge.addr).await;
    assert_eq!(reply.status, 200, "{:?}", reply.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_writes_4_mib_before_it_reads_gets_the_413_json() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&["--upstream-token-url", &upstream.token_url()]);

    let addr = bridge.addr.clone();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        // As Python's http.client does: the whole request written, then the answer read.
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        let body = vec![b'a'; 4 << 20];
        let head = format!(
            "POST /token HTTP/1.1\r\nHost: bridge\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        stream.write_all(head.as_bytes()).expect("the head is written");
        stream.write_all(&body).expect("the whole body is written, not reset");
        let mut answer = Vec::new();
        stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        // The answer, then the end of the connection (or its reset once the answer is read).
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if !answer.is_empty() => {
                    let _ = e;
                    break;
                }
                Err(e) => panic!("reading the answer failed: {e}"),
            }
            if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                break;
            }
        }
        String::from_utf8_lossy(&answer).into_owned()
    })
    .await
    .unwrap();

    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains(r#""error":"invalid_request""#), "{answer}");
    assert!(upstream.seen().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implicit_callback_exchanges_count_against_the_same_limit_as_the_token_route() {
    use account_link_bridge::authorize::AuthorizeRedirect;
    use account_link_bridge::state::StateSealer;
    use account_link_bridge::TokenExchangeLayer;
    use tower::Layer;

    let upstream = FakeUpstream::salesforce()
        .delay(Duration::from_millis(1500))
        .await;
    // One upstream client, one call at a time, shared by /token and the implicit /callback.
    let token_client = Upstream::new(upstream.token_url().parse().unwrap()).max_concurrent_calls(1);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let authorize = AuthorizeRedirect::builder()
        .upstream_authorize_url(upstream.authorize_url())
        .client_id("bridge-app")
        .client_secret("bridge-secret")
        .public_url(base.clone())
        .sealer(StateSealer::random())
        .implicit(TokenExchangeLayer::new(Provider::salesforce()).layer(token_client.clone()))
        .build()
        .unwrap();
    support::serve_service_on(
        listener,
        Bridge::with_authorize(Provider::salesforce(), token_client, authorize),
    );
    let get = |url: String| async move {
        support::send(Request::get(url).body(Full::new(Bytes::new())).unwrap()).await
    };
    // Alexa's implicit-grant redirect, or its code redirect where the former is not accepted.
    let mut location = None;
    for alexa in [
        "https://pitangui.amazon.com/spa/skill/account-linking-status.html?vendorId=M2AAAAAAAAAAAA",
        "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
    ] {
        let query = serde_urlencoded::to_string([
            ("state", "alexa-state"),
            ("redirect_uri", alexa),
            ("response_type", "token"),
            ("client_id", "alexa"),
        ])
        .unwrap();
        let reply = get(format!("{base}/authorize?{query}")).await;
        if reply.status == 302 {
            location = reply.header("location").map(str::to_owned);
            break;
        }
    }
    let location = location.expect("/authorize redirects to the upstream");
    let sealed_state = url::Url::parse(&location)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "state")
        .unwrap()
        .1
        .into_owned();

    // A token exchange takes the one place...
    let token = tokio::spawn({
        let url = format!("{base}/token");
        async move {
            support::post(
                &url,
                &[],
                r#"{"grant_type":"refresh_token","refresh_token":"r"}"#,
            )
            .await
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    // ...so the implicit exchange at /callback is shed, not sent upstream.
    let callback = get(format!(
        "{base}/callback?{}",
        serde_urlencoded::to_string([("code", "upstream-code"), ("state", sealed_state.as_str())])
            .unwrap()
    ))
    .await;
    assert_eq!(callback.status, 302, "{:?}", callback.body);
    let to_alexa = callback.header("location").unwrap();
    let fragment = to_alexa
        .split_once('#')
        .expect("an answer in the fragment")
        .1;
    assert!(
        fragment.contains("error=temporarily_unavailable"),
        "{to_alexa}"
    );
    assert_eq!(token.await.unwrap().status, 200);
    assert_eq!(
        upstream.calls(),
        1,
        "the shed exchange reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_is_closed_gracefully_after_its_last_allowed_request() {
    let upstream = FakeUpstream::salesforce().await;
    let bridge = BridgeProcess::start(&[
        "--upstream-token-url",
        &upstream.token_url(),
        "--max-requests-per-connection",
        "3",
    ]);

    let stream = TcpStream::connect(&bridge.addr).await.unwrap();
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    let connection = tokio::spawn(connection);
    for n in 1..=3 {
        let request = Request::post(format!("http://{}/token", bridge.addr))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(Full::new(Bytes::from_static(GENUINE_REFRESH.as_bytes())))
            .unwrap();
        sender.ready().await.unwrap();
        let response = sender.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200, "request {n}");
        let closes = response
            .headers()
            .get("connection")
            .is_some_and(|v| v == "close");
        assert_eq!(closes, n == 3, "request {n}");
        response.into_body().collect().await.unwrap();
    }
    assert!(
        tokio::time::timeout(Duration::from_secs(5), connection)
            .await
            .is_ok(),
        "the connection outlived its last allowed request"
    );
}

//! Upstream faults: each is answered with RFC 6749 JSON within a bounded time, never with
//! `invalid_grant`/`invalid_client`, and leaks no file descriptor.

use testkit as support;

use std::time::{Duration, Instant};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenExchangeLayer};
use axum::Router;
use support::post;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const EXCHANGE: &str =
    "grant_type=authorization_code&code=c0de&client_id=alexa&client_secret=s3cret";
const TIMEOUT: Duration = Duration::from_millis(500);

/// A raw TCP upstream that reads the request head, then plays `script` on the socket.
async fn raw_upstream<F, Fut>(script: F) -> String
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + Sync + Clone + 'static,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut stream, _)) = listener.accept().await else {
                continue;
            };
            let script = script.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let mut seen = Vec::new();
                // Read until the end of the body (the request is small and has Content-Length).
                while !String::from_utf8_lossy(&seen).contains("client_secret") {
                    match stream.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => seen.extend_from_slice(&buf[..n]),
                    }
                }
                script(stream).await;
            });
        }
    });
    format!("http://{addr}/token")
}

async fn bridge(upstream_url: &str) -> String {
    let upstream = Upstream::new(upstream_url.parse().unwrap()).timeout(TIMEOUT);
    let token = tower::ServiceBuilder::new()
        .layer(TokenExchangeLayer::new(Provider::salesforce()))
        .service(upstream);
    let addr = support::serve_axum(Router::new().route_service("/token", token)).await;
    format!("http://{addr}/token")
}

/// Runs one exchange against a faulty upstream and checks the answer's shape and timing.
async fn fault(upstream_url: &str, status: u16, error: &str) -> String {
    let url = bridge(upstream_url).await;
    let started = Instant::now();
    let reply = post(
        &url,
        &[("content-type", "application/x-www-form-urlencoded")],
        EXCHANGE,
    )
    .await;
    let elapsed = started.elapsed();
    assert!(
        elapsed < TIMEOUT + Duration::from_millis(700),
        "answered after {elapsed:?}"
    );
    assert_eq!(reply.status, status, "{:?}", reply.body);
    let code = reply.oauth_error();
    assert_eq!(code, error);
    let description = reply.json()["error_description"]
        .as_str()
        .unwrap()
        .to_string();
    for secret in ["c0de", "s3cret"] {
        assert!(!description.contains(secret));
    }
    description
}

fn http_response(status: &str, content_type: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn stalled_before_headers_is_504() {
    let url = raw_upstream(|stream| async move {
        let _open = stream;
        tokio::time::sleep(Duration::from_secs(30)).await;
    })
    .await;
    fault(&url, 504, "temporarily_unavailable").await;
}

#[tokio::test]
async fn dripping_the_body_is_cut_off_by_the_timeout() {
    let url = raw_upstream(|mut stream| async move {
        let head =
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        for _ in 0..1000 {
            if stream.write_all(b" ").await.is_err() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
    .await;
    fault(&url, 504, "temporarily_unavailable").await;
}

#[tokio::test]
async fn a_reset_mid_body_is_502() {
    let url = raw_upstream(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{\"access_token\":\"abc";
        let _ = stream.write_all(head.as_bytes()).await;
        // A zero linger sends RST at once (it cannot block).
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream); // RST
    })
    .await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("broke off"), "{description}");
}

#[tokio::test]
async fn closing_without_an_answer_is_502() {
    let url = raw_upstream(|stream| async move {
        drop(stream);
    })
    .await;
    fault(&url, 502, "temporarily_unavailable").await;
}

#[tokio::test]
async fn an_oversized_answer_is_502() {
    let url = raw_upstream(|mut stream| async move {
        let body = format!(r#"{{"access_token":"{}"}}"#, "a".repeat(200_000));
        let _ = stream
            .write_all(&http_response("200 OK", "application/json", &body))
            .await;
    })
    .await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("exceeded"), "{description}");
}

#[tokio::test]
async fn gigantic_json_streamed_forever_is_cut_at_the_cap() {
    let url = raw_upstream(|mut stream| async move {
        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
        let _ = stream.write_all(head.as_bytes()).await;
        let chunk = format!("{:x}\r\n{}\r\n", 8192, "[".repeat(8192));
        for _ in 0..10_000 {
            if stream.write_all(chunk.as_bytes()).await.is_err() {
                return;
            }
        }
    })
    .await;
    fault(&url, 502, "server_error").await;
}

#[tokio::test]
async fn invalid_json_is_502() {
    let url = raw_upstream(|mut stream| async move {
        let _ = stream
            .write_all(&http_response(
                "200 OK",
                "application/json",
                r#"{"access_token": "abc", }"#,
            ))
            .await;
    })
    .await;
    fault(&url, 502, "server_error").await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_is_502() {
    let followed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let target = {
        let followed = followed.clone();
        raw_upstream(move |_stream| {
            followed.store(true, std::sync::atomic::Ordering::SeqCst);
            async {}
        })
        .await
    };
    let url = raw_upstream(move |mut stream| {
        let target = target.clone();
        async move {
            let head = format!("HTTP/1.1 307 Temporary Redirect\r\nlocation: {target}\r\ncontent-length: 0\r\n\r\n");
            let _ = stream.write_all(head.as_bytes()).await;
        }
    })
    .await;
    let description = fault(&url, 502, "server_error").await;
    assert!(description.contains("307"), "{description}");
    assert!(!followed.load(std::sync::atomic::Ordering::SeqCst));
}

#[tokio::test]
async fn an_html_403_from_a_proxy_never_reads_as_a_dead_grant() {
    let url = raw_upstream(|mut stream| async move {
        let _ = stream
            .write_all(&http_response(
                "403 Forbidden",
                "text/html",
                "<h1>Forbidden</h1>",
            ))
            .await;
    })
    .await;
    fault(&url, 502, "server_error").await;
}

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_faults_leak_no_file_descriptors() {
    let stall = raw_upstream(|stream| async move {
        let _open = stream;
        tokio::time::sleep(Duration::from_secs(3)).await;
    })
    .await;
    let reset = raw_upstream(|stream| async move {
        // A zero linger sends RST at once (it cannot block).
        #[allow(deprecated)]
        let _ = stream.set_linger(Some(Duration::ZERO));
        drop(stream);
    })
    .await;
    let stall_bridge = bridge(&stall).await;
    let reset_bridge = bridge(&reset).await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    // Warm up, so that pools and runtime threads exist before counting.
    post(&reset_bridge, &form, EXCHANGE).await;
    let before = open_fds();
    let mut rounds = Vec::new();
    for _ in 0..20 {
        for url in [stall_bridge.clone(), reset_bridge.clone()] {
            rounds.push(tokio::spawn(async move {
                post(
                    &url,
                    &[("content-type", "application/x-www-form-urlencoded")],
                    EXCHANGE,
                )
                .await
            }));
        }
    }
    for round in rounds {
        assert!(round.await.unwrap().status.is_server_error());
    }
    // Let the stalled upstream tasks end and closed sockets be reaped.
    tokio::time::sleep(Duration::from_secs(4)).await;
    let after = open_fds();
    assert!(
        after <= before + 8,
        "file descriptors: {before} before, {after} after"
    );
}

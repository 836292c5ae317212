//! End-to-end harness: the bridge against a bare passthrough proxy, the limit it can approach.
//!
//! ```text
//! cargo bench -p account-link-bridge-server --bench e2e
//! E2E_SECS=3 E2E_ROUNDS=3 E2E_CONNECTIONS=32,256 E2E_BRIDGE_LOG=info cargo bench -p account-link-bridge-server --bench e2e
//! ```
//!
//! Everything runs on loopback, each server in its own process so each one's peak RSS is its own:
//!
//! - a Salesforce-like upstream (this binary, `E2E_ROLE=upstream`): hyper answering the canned
//!   Salesforce JSON, without `expires_in`, to every request;
//! - a bare passthrough proxy (this binary, `E2E_ROLE=passthrough`): hyper, served by the
//!   bridge's own serving loop (`account_link_bridge_server::serve`), in front of the same pooled
//!   `account_link_bridge::upstream::Upstream` client; it buffers Alexa's request and forwards
//!   it, and relays the answer, rewriting nothing: the limit the bridge can approach;
//! - the bridge: the `bridge` binary (`target/release/bridge`, built by cargo for the bench), `Bridge::new(Provider::salesforce(), Upstream)`, logging at its default level
//!   (INFO, one line per exchange) into /dev/null unless `E2E_BRIDGE_LOG` says otherwise, with
//!   the options in `E2E_BRIDGE_ARGS` (default `--no-refresh-records`: the load repeats one
//!   code, which the refresh records would otherwise answer from the record as a replay).
//!
//! This process is the load client: for each request kind (a form with the credentials in the
//! body; JSON without Content-Type) and each connection count, it runs rounds of `E2E_SECS`
//! seconds alternately on the bridge and on the passthrough (the first target alternates too),
//! each connection a tokio task with its own keep-alive HTTP/1.1 connection
//! (`hyper::client::conn::http1`). Every answer is checked (status 200, an `access_token`
//! present); anything else is counted as an error. Each round is bounded in time.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::FullBody;
use account_link_bridge_server::serve;
use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tower::{service_fn, Service};

/// Salesforce's answer to a code exchange: no `expires_in`, an `instance_url` to pack.
const SALESFORCE_ANSWER: &str = r#"{"access_token":"00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs","refresh_token":"5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrnNvDcxUnUkFDDnPshtSpe1ZwkO4xzpCb5X6nc8tRU24.Rq6h","signature":"CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=","scope":"refresh_token api","instance_url":"https://yourInstance.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","token_type":"Bearer","issued_at":"1278448384422"}"#;
/// Alexa's form, credentials in the body.
const ALEXA_FORM: &str = "grant_type=authorization_code&code=ANBzsjhYZmNlBSYVPPiC&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA&client_id=alexa-skill&client_secret=s3cr3t-0f-the-sk1ll";
/// Alexa's JSON, sent without a Content-Type.
const ALEXA_JSON: &str = r#"{"grant_type":"authorization_code","code":"ANBzsjhYZmNlBSYVPPiC","redirect_uri":"https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA","client_id":"alexa-skill","client_secret":"s3cr3t-0f-the-sk1ll"}"#;
const TOKEN_PATH: &str = "/services/oauth2/token";

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match std::env::var("E2E_ROLE").as_deref() {
        Ok("upstream") => runtime.block_on(run_upstream(listen_addr())),
        Ok("passthrough") => runtime.block_on(run_passthrough(
            listen_addr(),
            std::env::var("E2E_UPSTREAM").expect("E2E_UPSTREAM is set"),
        )),
        _ => runtime.block_on(run_load()),
    }
}

fn listen_addr() -> SocketAddr {
    std::env::var("E2E_LISTEN")
        .expect("E2E_LISTEN is set")
        .parse()
        .expect("E2E_LISTEN is an address")
}

/// Binds `addr` (port 0: one the system chooses) and prints `listening on ADDR` on stdout, for
/// the harness to read.
async fn bind_and_report(addr: SocketAddr) -> TcpListener {
    let listener = TcpListener::bind(addr).await.expect("the server listens");
    let local = listener.local_addr().expect("a bound address");
    println!("listening on {local}");
    listener
}

/// The Salesforce-like upstream: reads the request, answers the canned JSON.
async fn run_upstream(addr: SocketAddr) {
    let listener = bind_and_report(addr).await;
    let service = service_fn(|request: Request<serve::RequestBody>| async move {
        let _ = request.into_body().collect().await;
        let mut response =
            Response::new(Full::new(Bytes::from_static(SALESFORCE_ANSWER.as_bytes())));
        response.headers_mut().insert(
            CONTENT_TYPE,
            http::HeaderValue::from_static("application/json;charset=UTF-8"),
        );
        Ok::<_, Infallible>(response)
    });
    serve::serve(
        listener,
        service,
        None,
        serve::ClientLimits::default(),
        std::future::pending(),
    )
    .await;
}

/// The bare passthrough proxy: buffers the request, forwards it through the same pooled client
/// the bridge uses, relays the answer. No parsing, no rewriting.
async fn run_passthrough(addr: SocketAddr, upstream: String) {
    let listener = bind_and_report(addr).await;
    let upstream = Upstream::new(upstream.parse().expect("a valid upstream URL"));
    let service = service_fn(move |request: Request<serve::RequestBody>| {
        let mut upstream = upstream.clone();
        async move {
            let (parts, body) = request.into_parts();
            let Ok(body) = Limited::new(body, 16 * 1024).collect().await else {
                let mut refused = Response::new(FullBody::default());
                *refused.status_mut() = StatusCode::BAD_REQUEST;
                return Ok::<_, Infallible>(refused);
            };
            let request = Request::from_parts(parts, FullBody::new(body.to_bytes()));
            upstream.call(request).await
        }
    });
    serve::serve(
        listener,
        service,
        None,
        serve::ClientLimits::default(),
        std::future::pending(),
    )
    .await;
}

/// Spawns one of this binary's servers on port 0 and reads the address it reports on stdout
/// (`listening on ADDR`); its later output is read and dropped, so it never blocks on a full
/// pipe. A port the harness probed and released could be taken by another process before the
/// child binds it; a port the child chose cannot.
fn spawn_reporting(command: &mut Command) -> (Child, SocketAddr) {
    use std::io::{BufRead, BufReader};
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("a server process starts");
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(addr) = line.strip_prefix("listening on ") {
                let _ = tx.send(addr.parse::<SocketAddr>().expect("an address"));
            }
        }
    });
    let addr = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the server says where it listens within 30 s");
    (child, addr)
}

/// A loopback port free a moment ago, for the bridge: its log goes to `/dev/null` as measured,
/// so it cannot report a port of its own choosing. Probed only once the other servers listen,
/// so nothing of the harness can take it before the bridge binds it.
fn free_port() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

/// Children killed (by their own handles) when the harness ends, however it ends.
struct Children(Vec<Child>);

impl Drop for Children {
    fn drop(&mut self) {
        for child in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The `bridge` binary cargo built for this bench.
fn bridge_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_bridge"))
}

async fn wait_listening(addr: SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "{addr} never started listening");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `VmHWM` (peak resident set) of a process, in KiB.
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// A form, credentials in the body.
    Form,
    /// JSON without Content-Type.
    Json,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Form => "form, credentials in body",
            Kind::Json => "JSON, no Content-Type",
        }
    }

    fn request(self, addr: SocketAddr) -> Request<Full<Bytes>> {
        let builder = Request::post("/token").header(HOST, addr.to_string());
        match self {
            Kind::Form => builder
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(Full::new(Bytes::from_static(ALEXA_FORM.as_bytes()))),
            Kind::Json => builder.body(Full::new(Bytes::from_static(ALEXA_JSON.as_bytes()))),
        }
        .expect("a valid request")
    }
}

/// What one round on one target measured.
#[derive(Default)]
struct Round {
    ok: u64,
    errors: u64,
    secs: f64,
    latencies_us: Vec<u32>,
}

impl Round {
    fn throughput(&self) -> f64 {
        self.ok as f64 / self.secs
    }

    fn percentile_ms(&self, p: f64) -> f64 {
        if self.latencies_us.is_empty() {
            return f64::NAN;
        }
        let i = ((self.latencies_us.len() - 1) as f64 * p).round() as usize;
        f64::from(self.latencies_us[i]) / 1000.0
    }
}

/// One connection's loop until the deadline: send, read, check, time.
async fn drive(
    addr: SocketAddr,
    kind: Kind,
    start: tokio::sync::watch::Receiver<Option<Instant>>,
) -> Round {
    let mut round = Round::default();
    let Ok(stream) = TcpStream::connect(addr).await else {
        round.errors += 1;
        return round;
    };
    let _ = stream.set_nodelay(true);
    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        round.errors += 1;
        return round;
    };
    tokio::spawn(connection);
    let mut start = start;
    let deadline = match start.wait_for(Option::is_some).await {
        Ok(deadline) => deadline.expect("set"),
        Err(_) => return round,
    };
    round.latencies_us.reserve(4096);
    while Instant::now() < deadline {
        if sender.ready().await.is_err() {
            round.errors += 1;
            break;
        }
        let sent = Instant::now();
        let answer = match sender.send_request(kind.request(addr)).await {
            Ok(response) => {
                let status = response.status();
                response
                    .into_body()
                    .collect()
                    .await
                    .map(|body| (status, body.to_bytes()))
            }
            Err(error) => {
                eprintln!("request failed: {error}");
                round.errors += 1;
                break;
            }
        };
        let elapsed = sent.elapsed();
        match answer {
            Ok((StatusCode::OK, body))
                if body
                    .windows(16)
                    .any(|w| w == b"\"access_token\":\"".as_slice()) =>
            {
                round.ok += 1;
                round
                    .latencies_us
                    .push(u32::try_from(elapsed.as_micros()).unwrap_or(u32::MAX));
            }
            _ => round.errors += 1,
        }
    }
    round
}

/// One round on one target: all connections opened first, then the clock starts.
async fn run_round(addr: SocketAddr, kind: Kind, connections: usize, secs: f64) -> Round {
    let (go, start) = tokio::sync::watch::channel(None);
    let tasks: Vec<_> = (0..connections)
        .map(|_| tokio::spawn(drive(addr, kind, start.clone())))
        .collect();
    // Let the connections open and handshake before the clock starts.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let _ = go.send(Some(started + Duration::from_secs_f64(secs)));
    let mut total = Round::default();
    let all = async {
        for task in tasks {
            if let Ok(round) = task.await {
                total.ok += round.ok;
                total.errors += round.errors;
                total.latencies_us.extend(round.latencies_us);
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs_f64(secs + 10.0), all)
        .await
        .is_err()
    {
        eprintln!("round on {addr} did not finish within {secs} s + 10 s");
    }
    total.secs = started.elapsed().as_secs_f64();
    total.latencies_us.sort_unstable();
    total
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn spread(values: &[f64]) -> (f64, f64) {
    values
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(*v), hi.max(*v))
        })
}

async fn run_load() {
    let secs: f64 = env_or("E2E_SECS", 3.0);
    let rounds: usize = env_or("E2E_ROUNDS", 3);
    let connection_counts: Vec<usize> = std::env::var("E2E_CONNECTIONS")
        .unwrap_or_else(|_| "32,256".into())
        .split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect();
    let bridge_log = std::env::var("E2E_BRIDGE_LOG").unwrap_or_else(|_| "info".into());
    // The load repeats one code: with refresh records on, every exchange after the first would
    // be a replay answered from the record. Code exchanges are measured unless told otherwise.
    let bridge_args =
        std::env::var("E2E_BRIDGE_ARGS").unwrap_or_else(|_| "--no-refresh-records".to_owned());

    let bridge_binary = bridge_binary();
    let exe = std::env::current_exe().expect("the bench binary's path");
    let any_port = "127.0.0.1:0";
    let mut children = Children(Vec::new());
    let (upstream, upstream_addr) = spawn_reporting(
        Command::new(&exe)
            .env("E2E_ROLE", "upstream")
            .env("E2E_LISTEN", any_port),
    );
    children.0.push(upstream);
    let upstream_url = format!("http://{upstream_addr}{TOKEN_PATH}");
    let (passthrough, passthrough_addr) = spawn_reporting(
        Command::new(&exe)
            .env("E2E_ROLE", "passthrough")
            .env("E2E_LISTEN", any_port)
            .env("E2E_UPSTREAM", &upstream_url),
    );
    children.0.push(passthrough);
    let bridge_addr = free_port();
    children.0.push(
        Command::new(&bridge_binary)
            .args(["--listen", &bridge_addr.to_string()])
            .args(["--upstream-token-url", &upstream_url])
            .args(bridge_args.split_whitespace())
            .env("RUST_LOG", &bridge_log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the bridge starts"),
    );
    wait_listening(bridge_addr).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    if let Ok(Some(status)) = children.0[2].try_wait() {
        panic!("the bridge exited ({status}): {bridge_addr} was taken meanwhile; run again");
    }
    let passthrough_pid = children.0[1].id();
    let bridge_pid = children.0[2].id();

    println!(
        "e2e: {rounds} rounds of {secs} s per target, alternating; connections {connection_counts:?}; bridge log level {bridge_log}"
    );
    println!("passthrough pid {passthrough_pid}, bridge pid {bridge_pid}; all on loopback");
    println!();
    println!("| request | conns | target | req/s (median, min-max) | p50 ms | p99 ms | errors |");
    println!("| --- | ---: | --- | ---: | ---: | ---: | ---: |");
    let mut summary = Vec::new();
    for kind in [Kind::Form, Kind::Json] {
        for &connections in &connection_counts {
            // Warm both targets (pools, allocator, caches) before measuring.
            run_round(bridge_addr, kind, connections, 0.5).await;
            run_round(passthrough_addr, kind, connections, 0.5).await;
            let mut bridge = Vec::new();
            let mut passthrough = Vec::new();
            for round in 0..rounds {
                let order = if round % 2 == 0 {
                    [true, false]
                } else {
                    [false, true]
                };
                for is_bridge in order {
                    let addr = if is_bridge {
                        bridge_addr
                    } else {
                        passthrough_addr
                    };
                    let measured = run_round(addr, kind, connections, secs).await;
                    if is_bridge {
                        bridge.push(measured);
                    } else {
                        passthrough.push(measured);
                    }
                }
            }
            let stats = |name: &str, runs: &[Round]| {
                let throughput: Vec<f64> = runs.iter().map(Round::throughput).collect();
                let (lo, hi) = spread(&throughput);
                let p50 = median(runs.iter().map(|r| r.percentile_ms(0.50)).collect());
                let p99 = median(runs.iter().map(|r| r.percentile_ms(0.99)).collect());
                let errors: u64 = runs.iter().map(|r| r.errors).sum();
                println!(
                    "| {} | {connections} | {name} | {:.0} ({lo:.0}-{hi:.0}) | {p50:.2} | {p99:.2} | {errors} |",
                    kind.name(),
                    median(throughput.clone()),
                );
                (median(throughput), p50, p99)
            };
            let b = stats("bridge", &bridge);
            let p = stats("passthrough", &passthrough);
            let per_round: Vec<f64> = bridge
                .iter()
                .zip(&passthrough)
                .map(|(b, p)| b.throughput() / p.throughput())
                .collect();
            summary.push((kind, connections, b, p, per_round));
        }
    }
    println!();
    println!(
        "| request | conns | bridge/passthrough throughput (median; per round) | p99 added ms |"
    );
    println!("| --- | ---: | --- | ---: |");
    for (kind, connections, b, p, per_round) in summary {
        let rounds: Vec<String> = per_round.iter().map(|r| format!("{r:.3}")).collect();
        println!(
            "| {} | {connections} | {:.3}; {} | {:.2} |",
            kind.name(),
            b.0 / p.0,
            rounds.join(", "),
            b.2 - p.2
        );
    }
    println!();
    let mib = |kib: Option<u64>| {
        kib.map_or("unknown".into(), |k| {
            format!("{:.1} MiB", k as f64 / 1024.0)
        })
    };
    println!(
        "peak RSS (VmHWM) after all rounds: bridge {}, passthrough {}",
        mib(peak_rss_kib(bridge_pid)),
        mib(peak_rss_kib(passthrough_pid))
    );
    drop(children);
}

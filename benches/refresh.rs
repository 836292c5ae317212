//! What the refresh records add to a token exchange: the exchange with an in-process upstream
//! (answering at once) without records, with the memory store, and with Redis on loopback.
//!
//! ```text
//! cargo bench --bench refresh --features redis
//! ```
//!
//! Cases: `refresh` (a new token each time: look-up, claim, the upstream call on its own task,
//! the record sealed and written, the claim released) and `replay` (the same token again: the
//! record read, opened, and its successor checked). Criterion prints the mean; the harness then
//! prints p50 and p99 over 2000 sequential exchanges each. The Redis cases start their own
//! `redis-server` on a free loopback port and are skipped when it is not installed.

use std::convert::Infallible;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use account_link_bridge::refresh::{MemoryStore, RecordStore, RefreshRecords};
use account_link_bridge::{FullBody, Provider, TokenExchangeLayer};
use criterion::Criterion;
use http::{Request, Response};
use tower::{service_fn, Layer, ServiceExt};

type Exchange = Box<
    dyn FnMut(String) -> std::pin::Pin<Box<dyn std::future::Future<Output = u16> + Send>> + Send,
>;

/// The token exchange over an upstream that rotates at once; `records` or none.
fn exchange(records: Option<RefreshRecords>) -> Exchange {
    let issued = Arc::new(AtomicU64::new(0));
    let upstream = service_fn(move |_request: Request<FullBody>| {
        let n = issued.fetch_add(1, Ordering::Relaxed);
        async move {
            let body = format!(
                r#"{{"access_token":"00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs{n}","refresh_token":"5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrbU1Q{n}","instance_url":"https://na1.salesforce.com","token_type":"Bearer"}}"#
            );
            let mut response = Response::new(FullBody::from(body));
            response
                .headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok::<_, Infallible>(response)
        }
    });
    let mut layer = TokenExchangeLayer::new(Provider::salesforce());
    if let Some(records) = records {
        layer = layer.refresh_records(records);
    }
    let service = layer.layer(upstream);
    Box::new(move |token: String| {
        let service = service.clone();
        Box::pin(async move {
            let body = format!(
                "grant_type=refresh_token&refresh_token={token}&client_id=alexa&client_secret=s3cret"
            );
            let request = Request::post("/token")
                .header("content-type", "application/x-www-form-urlencoded")
                .body(FullBody::from(body))
                .unwrap();
            let response = service.oneshot(request).await.unwrap();
            response.status().as_u16()
        })
    })
}

fn records(store: impl RecordStore) -> RefreshRecords {
    RefreshRecords::new(store).index_key(b"benchmark state key, 32 bytes or more")
}

fn start_redis() -> Option<testkit::redis::RedisServer> {
    let installed = Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    installed.then(testkit::redis::RedisServer::start)
}

fn percentiles(runtime: &tokio::runtime::Runtime, name: &str, run: &mut Exchange, replay: bool) {
    let mut times = Vec::with_capacity(2000);
    let mut n = 0u64;
    for _ in 0..2000 {
        n += 1;
        let token = if replay {
            "the-replayed-token".to_string()
        } else {
            format!("pct-{name}-{n}")
        };
        let started = Instant::now();
        let status = runtime.block_on(run(token));
        times.push(started.elapsed());
        assert_eq!(status, 200);
    }
    times.sort();
    println!(
        "{name:<28} p50 {:>8.1} µs   p99 {:>8.1} µs",
        times[times.len() / 2].as_secs_f64() * 1e6,
        times[times.len() * 99 / 100].as_secs_f64() * 1e6
    );
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut criterion = Criterion::default()
        .configure_from_args()
        .measurement_time(Duration::from_secs(3))
        .warm_up_time(Duration::from_secs(1));
    let _guard = runtime.enter();
    let redis = start_redis();
    let mut cases: Vec<(String, Exchange)> = vec![
        ("no records".into(), exchange(None)),
        (
            "memory".into(),
            exchange(Some(records(MemoryStore::new().max_entries(1_000_000)))),
        ),
    ];
    #[cfg(feature = "redis")]
    if let Some(redis) = &redis {
        let store = account_link_bridge::refresh::RedisStore::open(&redis.url()).unwrap();
        cases.push(("redis (loopback)".into(), exchange(Some(records(store)))));
    }
    if redis.is_none() {
        println!("redis-server not found: the Redis cases are skipped");
    }
    for (name, run) in &mut cases {
        let mut n = 0u64;
        criterion.bench_function(&format!("refresh/{name}"), |b| {
            b.iter(|| {
                n += 1;
                runtime.block_on(run(format!("crit-{n}")))
            })
        });
        if name != "no records" {
            // The first presentation records; every later one is a replay.
            runtime.block_on(run("the-replayed-token".into()));
            criterion.bench_function(&format!("replay/{name}"), |b| {
                b.iter(|| runtime.block_on(run("the-replayed-token".into())))
            });
        }
    }
    println!();
    for (name, run) in &mut cases {
        percentiles(&runtime, &format!("refresh, {name}"), run, false);
        if name != "no records" {
            percentiles(&runtime, &format!("replay, {name}"), run, true);
        }
    }
    criterion.final_summary();
}

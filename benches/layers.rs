//! Micro-benchmarks of each layer's own work, with a no-op inner service.
//!
//! ```text
//! cargo bench --bench layers
//! ```
//!
//! Prints, after criterion's time per operation, a table of heap allocations per operation
//! (counted by a global allocator wrapping `System`). The layers' futures complete at their
//! first poll here (the bodies are in memory and the inner service answers at once), so they
//! are polled by hand with a no-op waker: no runtime's scheduling is measured.
//!
//! `LAYERS_PROFILE=<case> LAYERS_ITERS=<n>` runs only that case `n` times through
//! `measured_op`, for `valgrind --tool=callgrind --toggle-collect='*measured_op*'` (instruction
//! counts are repeatable on a loaded machine; wall-clock time is not).

use std::alloc::{GlobalAlloc, Layout, System};
use std::convert::Infallible;
use std::future::{ready, Future};
use std::hint::black_box;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll, Wake, Waker};
use std::time::Duration;

use account_link_bridge::state::{SealedPayload, StateSealer};
use account_link_bridge::{
    token_request::NormalizeTokenRequestLayer, token_response::RewriteTokenResponseLayer, FullBody,
    PackedToken, Provider, TokenExchangeLayer, TokenRequest,
};
use criterion::{BatchSize, Criterion};
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use serde::{Deserialize, Serialize};
use tower::{service_fn, Layer, Service};

/// Counts every allocation (and reallocation) made through the global allocator.
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);
static ALLOCATED_BYTES: AtomicU64 = AtomicU64::new(0);

// SAFETY: every call is forwarded unchanged to `System`; only counters are added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc(layout)
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(layout.size() as u64, Ordering::Relaxed);
        System.alloc_zeroed(layout)
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        ALLOCATED_BYTES.fetch_add(new_size as u64, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Alexa's token request as a form with the credentials in the body.
const ALEXA_FORM: &str = "grant_type=authorization_code&code=ANBzsjhYZmNlBSYVPPiC&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA&client_id=alexa-skill&client_secret=s3cr3t-0f-the-sk1ll";
/// The same request as a form with the credentials in HTTP Basic.
const ALEXA_FORM_NO_CREDENTIALS: &str = "grant_type=authorization_code&code=ANBzsjhYZmNlBSYVPPiC&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAAAAAAAAAA";
/// `Basic base64("alexa-skill:s3cr3t-0f-the-sk1ll")`.
const ALEXA_BASIC: &str = "Basic YWxleGEtc2tpbGw6czNjcjN0LTBmLXRoZS1zazFsbA==";
/// The same request as JSON, sent without a Content-Type (as Alexa was reported sending it).
const ALEXA_JSON: &str = r#"{"grant_type":"authorization_code","code":"ANBzsjhYZmNlBSYVPPiC","redirect_uri":"https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA","client_id":"alexa-skill","client_secret":"s3cr3t-0f-the-sk1ll"}"#;
/// Salesforce's answer to a code exchange: no `expires_in`, an `instance_url` to pack.
const SALESFORCE_ANSWER: &str = r#"{"access_token":"00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs","refresh_token":"5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrnNvDcxUnUkFDDnPshtSpe1ZwkO4xzpCb5X6nc8tRU24.Rq6h","signature":"CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=","scope":"refresh_token api","instance_url":"https://yourInstance.salesforce.com","id":"https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P","token_type":"Bearer","issued_at":"1278448384422"}"#;
/// Salesforce's answer to an expired code.
const SALESFORCE_ERROR: &str =
    r#"{"error":"invalid_grant","error_description":"expired authorization code"}"#;
/// What a skill receives from Alexa: the token the bridge packed.
const PACKED: &str = "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9LjHnSSpwBMmbRcgKFmxOtvxjTrKW19ye6PE3Ds1eQz3z8jr3W7_VbWmEu4Q8TVGSTHxs https://yourInstance.salesforce.com";

/// A payload shaped like the authorization middleman's state: Alexa's state and redirect URL.
#[derive(Serialize, Deserialize)]
struct BenchState {
    s: String,
    r: String,
}

impl SealedPayload for BenchState {
    const PURPOSE: &'static str = "account-link-bridge/bench-state/v1";
}

fn alexa_state() -> BenchState {
    BenchState {
        s: "A2SAAEAEUZz5fYpWgXvvDTPgmqn9R2mg1dmEHrCNQyomDRgXmBW8Szu2dHpFl4uEhn6x4h6xL8EWDbNvk3bOTYlM".into(),
        r: "https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA".into(),
    }
}

fn waker() -> &'static Waker {
    struct Noop;
    impl Wake for Noop {
        fn wake(self: Arc<Self>) {}
    }
    static WAKER: OnceLock<Waker> = OnceLock::new();
    WAKER.get_or_init(|| Waker::from(Arc::new(Noop)))
}

/// Polls a future that must be ready at its first poll.
fn poll_once<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future.as_mut().poll(&mut Context::from_waker(waker())) {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the layer's future should complete at once here"),
    }
}

/// The no-op inner service of the request layer: drops the normalized request, answers `{}`.
fn noop_inner(
) -> impl Service<Request<FullBody>, Response = Response<FullBody>, Error = Infallible> + Clone {
    service_fn(|request: Request<FullBody>| {
        black_box(request);
        ready(Ok::<_, Infallible>(Response::new(FullBody::from("{}"))))
    })
}

/// An inner service that answers one canned upstream answer (built outside the measurement).
fn canned_inner(
    answer: Response<FullBody>,
) -> impl Service<Request<FullBody>, Response = Response<FullBody>, Error = Infallible> {
    let mut answer = Some(answer);
    service_fn(move |request: Request<FullBody>| {
        black_box(request);
        ready(Ok::<_, Infallible>(
            answer.take().expect("one call per service"),
        ))
    })
}

fn upstream_answer(status: StatusCode, body: &'static str) -> Response<FullBody> {
    let mut response = Response::new(FullBody::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
    response
}

/// The request the response layer sees: the normalized form with the parsed request attached.
fn normalized_request() -> Request<FullBody> {
    let token_request = TokenRequest::parse(&HeaderMap::new(), ALEXA_FORM.as_bytes()).unwrap();
    let mut request = Request::post("/token")
        .body(FullBody::from(ALEXA_FORM))
        .unwrap();
    request.extensions_mut().insert(token_request);
    request
}

/// Runs `routine` through one non-inlined function, so callgrind can count only it.
#[inline(never)]
fn measured_op<O>(routine: impl FnOnce() -> O) -> O {
    routine()
}

/// One benchmark case: criterion's time per operation, and our count of allocations.
struct Cases<'c> {
    criterion: &'c mut Criterion,
    profile: Option<String>,
    allocations: Vec<(&'static str, f64, f64)>,
}

impl Cases<'_> {
    fn case<I, O>(
        &mut self,
        name: &'static str,
        setup: impl Fn() -> I,
        routine: impl Fn(I) -> O,
        check: impl Fn(&O),
    ) {
        check(&routine(setup()));
        if let Some(profiled) = &self.profile {
            if profiled == name {
                let iters: u64 = std::env::var("LAYERS_ITERS")
                    .ok()
                    .and_then(|n| n.parse().ok())
                    .unwrap_or(10_000);
                for _ in 0..iters {
                    let input = setup();
                    black_box(measured_op(|| routine(input)));
                }
                println!("{name}: ran {iters} times through measured_op");
            }
            return;
        }
        const ROUNDS: u64 = 1_000;
        let (mut count, mut bytes) = (0, 0);
        for _ in 0..ROUNDS {
            let input = setup();
            let (count0, bytes0) = counters();
            let output = routine(input);
            let (count1, bytes1) = counters();
            drop(black_box(output));
            count += count1 - count0;
            bytes += bytes1 - bytes0;
        }
        self.allocations.push((
            name,
            count as f64 / ROUNDS as f64,
            bytes as f64 / ROUNDS as f64,
        ));
        self.criterion.bench_function(name, |b| {
            b.iter_batched(&setup, &routine, BatchSize::SmallInput)
        });
    }
}

fn counters() -> (u64, u64) {
    (
        ALLOCATIONS.load(Ordering::Relaxed),
        ALLOCATED_BYTES.load(Ordering::Relaxed),
    )
}

fn is_ok_token(response: &Response<impl Sized>) {
    assert_eq!(response.status(), StatusCode::OK);
}

fn main() {
    let mut criterion = Criterion::default()
        .configure_from_args()
        .sample_size(30)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    let mut cases = Cases {
        criterion: &mut criterion,
        profile: std::env::var("LAYERS_PROFILE").ok(),
        allocations: Vec::new(),
    };
    let salesforce = Provider::salesforce();
    let normalize = NormalizeTokenRequestLayer::for_provider(&salesforce);
    let rewrite = RewriteTokenResponseLayer::for_provider(&salesforce);
    let exchange = TokenExchangeLayer::new(salesforce.clone());

    // The request layer: read, parse, encode the form, call the inner service.
    cases.case(
        "normalize/json_without_content_type",
        || {
            let service = normalize.layer(noop_inner());
            let request = Request::post("/token")
                .body(FullBody::from(ALEXA_JSON))
                .unwrap();
            (service, request)
        },
        |(mut service, request)| poll_once(service.call(request)).unwrap(),
        is_ok_token,
    );
    cases.case(
        "normalize/form_with_basic_credentials",
        || {
            let service = normalize.layer(noop_inner());
            let request = Request::post("/token")
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(AUTHORIZATION, ALEXA_BASIC)
                .body(FullBody::from(ALEXA_FORM_NO_CREDENTIALS))
                .unwrap();
            (service, request)
        },
        |(mut service, request)| poll_once(service.call(request)).unwrap(),
        is_ok_token,
    );

    // The response layer: read the answer, rewrite it, answer JSON.
    cases.case(
        "rewrite/salesforce_answer_packed",
        || {
            let answer = upstream_answer(StatusCode::OK, SALESFORCE_ANSWER);
            (rewrite.layer(canned_inner(answer)), normalized_request())
        },
        |(mut service, request)| poll_once(service.call(request)).unwrap(),
        |response| {
            is_ok_token(response);
            let body: serde_json::Value = serde_json::from_slice(response.body().as_bytes())
                .expect("the rewritten answer is JSON");
            assert_eq!(body["expires_in"], 5400);
            assert!(body["access_token"]
                .as_str()
                .unwrap()
                .ends_with(" https://yourInstance.salesforce.com"));
        },
    );
    cases.case(
        "rewrite/upstream_error",
        || {
            let answer = upstream_answer(StatusCode::BAD_REQUEST, SALESFORCE_ERROR);
            (rewrite.layer(canned_inner(answer)), normalized_request())
        },
        |(mut service, request)| poll_once(service.call(request)).unwrap(),
        |response| assert_eq!(response.status(), StatusCode::BAD_REQUEST),
    );
    cases.case(
        "rewrite_answer/salesforce (pure)",
        || {
            let mut headers = HeaderMap::new();
            headers.insert(
                CONTENT_TYPE,
                HeaderValue::from_static("application/json;charset=UTF-8"),
            );
            headers
        },
        |headers| {
            rewrite
                .rewrite_answer(StatusCode::OK, &headers, SALESFORCE_ANSWER.as_bytes(), None)
                .0
        },
        |result| assert!(result.is_ok()),
    );

    // Both layers around an inner service answering Salesforce's JSON (sniffed, no headers).
    cases.case(
        "exchange/json_request_salesforce_answer",
        || {
            let inner = service_fn(|request: Request<FullBody>| {
                black_box(request);
                ready(Ok::<_, Infallible>(Response::new(FullBody::from(
                    SALESFORCE_ANSWER,
                ))))
            });
            let request = Request::post("/token")
                .body(FullBody::from(ALEXA_JSON))
                .unwrap();
            (exchange.layer(inner), request)
        },
        |(mut service, request)| poll_once(service.call(request)).unwrap(),
        is_ok_token,
    );

    // The skill side, and the middleman's state.
    cases.case(
        "pack/unpack",
        || (),
        |()| PackedToken::unpack(black_box(PACKED)).unwrap(),
        |token| assert!(token.instance_url().is_some()),
    );
    let sealer = StateSealer::from_base64_keys("MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=")
        .expect("a valid key");
    let state = alexa_state();
    cases.case(
        "state/seal",
        || (),
        |()| sealer.seal(black_box(&state)),
        |sealed| assert!(sealer.open::<BenchState>(sealed).is_ok()),
    );
    let sealed = sealer.seal(&state);
    cases.case(
        "state/open",
        || (),
        |()| sealer.open::<BenchState>(black_box(&sealed)).unwrap(),
        |opened| assert_eq!(opened.s, state.s),
    );

    if cases.profile.is_some() {
        return;
    }
    let allocations = std::mem::take(&mut cases.allocations);
    criterion.final_summary();
    println!();
    println!("| case | allocations/op | bytes allocated/op |");
    println!("| --- | ---: | ---: |");
    for (name, count, bytes) in allocations {
        println!("| {name} | {count:.1} | {bytes:.0} |");
    }
}

//! `GET /metrics`: the library's metrics (feature `metrics`) in Prometheus' text format.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;

use crate::routes::Bridge;
use account_link_bridge::{FullBody, ResponseBody};
use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tower::Service;

/// Installs the Prometheus recorder for this process.
pub fn install() -> Result<PrometheusHandle, String> {
    if !cfg!(feature = "metrics") {
        // Serving an empty /metrics would look like a bridge that does nothing.
        return Err(
            "--metrics needs the crate's `metrics` feature: cargo run --release --example bridge --features metrics -- --metrics"
                .into(),
        );
    }
    PrometheusBuilder::new()
        .install_recorder()
        .map_err(|e| format!("cannot install the metrics recorder: {e}"))
}

/// The bridge's routes plus `GET /metrics` when a recorder is installed.
#[derive(Clone)]
pub struct WithMetrics {
    bridge: Bridge,
    metrics: Option<PrometheusHandle>,
}

impl WithMetrics {
    pub fn new(bridge: Bridge, metrics: Option<PrometheusHandle>) -> Self {
        WithMetrics { bridge, metrics }
    }
}

impl<B> Service<Request<B>> for WithMetrics
where
    Bridge: Service<Request<B>, Response = Response<ResponseBody<FullBody>>, Error = Infallible>,
{
    type Response = Response<ResponseBody<FullBody>>;
    type Error = Infallible;
    // Not boxed: every exchange passes here, and a box is an allocation per request.
    type Future = MetricsFuture<<Bridge as Service<Request<B>>>::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.bridge.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match &self.metrics {
            Some(handle)
                if request.uri().path() == "/metrics" && request.method() == Method::GET =>
            {
                let mut response = Response::new(ResponseBody::from(Bytes::from(handle.render())));
                let headers = response.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; version=0.0.4"),
                );
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                MetricsFuture::Page {
                    page: Some(response),
                }
            }
            _ => MetricsFuture::Bridge {
                inner: self.bridge.call(request),
            },
        }
    }
}

pin_project! {
    /// The metrics page, ready, or the bridge's own answer.
    #[project = MetricsFutureProj]
    pub enum MetricsFuture<F> {
        Page { page: Option<Response<ResponseBody<FullBody>>> },
        Bridge { #[pin] inner: F },
    }
}

impl<F> Future for MetricsFuture<F>
where
    F: Future<Output = Result<Response<ResponseBody<FullBody>>, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        match self.project() {
            MetricsFutureProj::Page { page } => match page.take() {
                Some(page) => Poll::Ready(Ok(page)),
                None => Poll::Pending,
            },
            MetricsFutureProj::Bridge { inner } => inner.poll(cx),
        }
    }
}

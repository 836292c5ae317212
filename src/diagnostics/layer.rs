//! [`DiagnosticsLayer`]: the observer of any token-exchange or authorize service.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::{Duration, Instant};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::authorize::AuthorizeReport;
use crate::outcome::Outcome;
use crate::token_request::RequestFacts;
use crate::token_response::RewriteReport;

/// Layer that reads the records this crate's layers attach to their answers and shows them:
/// see the [module docs](super). Answers without a record (a health check) pass unobserved.
#[derive(Clone, Copy, Debug, Default)]
pub struct DiagnosticsLayer {
    _private: (),
}

impl DiagnosticsLayer {
    /// The observer.
    pub fn new() -> Self {
        DiagnosticsLayer::default()
    }
}

impl<S> Layer<S> for DiagnosticsLayer {
    type Service = Diagnostics<S>;

    fn layer(&self, inner: S) -> Self::Service {
        Diagnostics { inner }
    }
}

/// Middleware that observes the answers of `S`: see [`DiagnosticsLayer`].
#[derive(Clone, Debug)]
pub struct Diagnostics<S> {
    inner: S,
}

impl<S> Diagnostics<S> {
    /// Observes `inner`.
    pub fn new(inner: S) -> Self {
        Diagnostics { inner }
    }

    crate::inner_service_accessors!();
}

impl<S, B, RB> Service<Request<B>> for Diagnostics<S>
where
    S: Service<Request<B>, Response = Response<RB>>,
{
    type Response = Response<RB>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        ResponseFuture {
            future: self.inner.call(request),
            started: Instant::now(),
        }
    }
}

pin_project! {
    /// The future of [`Diagnostics`]: the inner future, observed when it answers.
    pub struct ResponseFuture<F> {
        #[pin]
        future: F,
        started: Instant,
    }
}

impl<F, RB, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<RB>, E>>,
{
    type Output = Result<Response<RB>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let response = ready!(this.future.poll(cx))?;
        observe(&response, this.started.elapsed());
        Poll::Ready(Ok(response))
    }
}

/// Shows one answer by the records it carries.
fn observe<B>(response: &Response<B>, elapsed: Duration) {
    let extensions = response.extensions();
    if extensions.get::<AuthorizeReport>().is_some() {
        super::record_authorize(response, elapsed);
    } else if extensions.get::<Outcome>().is_some()
        || extensions.get::<RewriteReport>().is_some()
        || extensions.get::<RequestFacts>().is_some()
    {
        super::record_exchange(response, elapsed);
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use tower::{service_fn, ServiceExt};

    use super::*;

    #[tokio::test]
    async fn answers_pass_through_unchanged_with_their_records() {
        let service = DiagnosticsLayer::new().layer(service_fn(|_: Request<()>| async {
            let mut response = Response::new("body");
            response.extensions_mut().insert(Outcome::Refused);
            Ok::<_, Infallible>(response)
        }));
        let response = service.oneshot(Request::new(())).await.unwrap();
        assert_eq!(*response.body(), "body");
        assert_eq!(
            response.extensions().get::<Outcome>(),
            Some(&Outcome::Refused)
        );
    }
}

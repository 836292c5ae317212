//! The layer and its service.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::{AlexaRequestVerifier, Refusal, Rule};
use crate::body::{CollectError, Collector, FullBody, ResponseBody};

/// Verifies that each request comes from Alexa before the skill sees it: see the
/// [module docs](super).
#[derive(Clone, Debug)]
pub struct VerifyAlexaRequestLayer {
    verifier: Arc<AlexaRequestVerifier>,
}

impl VerifyAlexaRequestLayer {
    /// A layer checking requests with `verifier` (its certificate cache is shared by every
    /// service the layer makes).
    pub fn new(verifier: AlexaRequestVerifier) -> Self {
        VerifyAlexaRequestLayer {
            verifier: Arc::new(verifier),
        }
    }
}

impl<S> Layer<S> for VerifyAlexaRequestLayer {
    type Service = VerifyAlexaRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        VerifyAlexaRequest {
            inner,
            verifier: Arc::clone(&self.verifier),
        }
    }
}

/// The service of [`VerifyAlexaRequestLayer`]: buffers the body, verifies the request, and
/// calls `inner` with the same bytes and a
/// [`VerifiedAlexaRequest`](super::VerifiedAlexaRequest) in the extensions, or answers 400.
///
/// A refusal's response carries the [`Refusal`] in its extensions, for an observer.
#[derive(Clone, Debug)]
pub struct VerifyAlexaRequest<S> {
    inner: S,
    verifier: Arc<AlexaRequestVerifier>,
}

impl<S> VerifyAlexaRequest<S> {
    /// Wraps `inner`, checking requests with `verifier`.
    pub fn new(inner: S, verifier: AlexaRequestVerifier) -> Self {
        VerifyAlexaRequestLayer::new(verifier).layer(inner)
    }

    /// The layer, for `ServiceBuilder`.
    pub fn layer(verifier: AlexaRequestVerifier) -> VerifyAlexaRequestLayer {
        VerifyAlexaRequestLayer::new(verifier)
    }

    crate::inner_service_accessors!();
}

impl<S, B, ResBody> Service<Request<B>> for VerifyAlexaRequest<S>
where
    S: Service<Request<FullBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    ResBody: Send + 'static,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    // Boxed: verifying may fetch the certificate chain over the network, next to which one
    // allocation per request is noise; a named future would also have to name the fetcher's.
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        // The ready service moves into the future; a clone stays for the next call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = Arc::clone(&self.verifier);
        Box::pin(async move {
            let (mut parts, body) = request.into_parts();
            // The headers first: a request that cannot be Alexa's is refused without reading
            // its body (which may be large, slow or never come).
            let verified = match verifier.check_headers(&parts.headers) {
                Ok(signed) => match read_body(body, verifier.body_limit()).await {
                    Ok(bytes) => verifier
                        .verify_body(signed, &bytes)
                        .await
                        .map(|verified| (bytes, verified)),
                    Err(refusal) => Err(refusal),
                },
                Err(refusal) => Err(refusal),
            };
            match verified {
                Ok((bytes, verified)) => {
                    parts.extensions.insert(verified);
                    let request = Request::from_parts(parts, FullBody::new(bytes));
                    let response = inner.call(request).await?;
                    Ok(response.map(ResponseBody::inner))
                }
                Err(refusal) => {
                    refusal.log();
                    let mut response = refusal.to_response().map(ResponseBody::full);
                    response.extensions_mut().insert(refusal);
                    Ok(response)
                }
            }
        })
    }
}

async fn read_body<B>(body: B, limit: usize) -> Result<Bytes, Refusal>
where
    B: Body<Data = Bytes>,
{
    let mut body = std::pin::pin!(body);
    let mut collector = Collector::new(limit);
    poll_fn(|cx| collector.poll_collect(body.as_mut(), cx))
        .await
        .map_err(|e| match e {
            CollectError::TooLarge => {
                Refusal::new(Rule::Body, "the body is larger than the skill accepts")
            }
            CollectError::Body(_) => Refusal::new(Rule::Body, "the body could not be read"),
        })
}

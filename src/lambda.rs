//! Serving on AWS Lambda (feature `lambda`): [`LambdaService`] adapts a service on
//! `http::Request<FullBody>`, such as the server crate's routes (`bridge-lambda`), to the request and
//! response types of [`lambda_http`], so that `lambda_http::run` serves the same routes as the
//! standalone server, behind API Gateway (REST API or HTTP API), a Lambda Function URL or an
//! Application Load Balancer.
//!
//! - The request: `lambda_http` has already turned the event into an `http::Request`, decoded a
//!   base64 body (`isBase64Encoded: true`, as API Gateway sends forms) and kept the path with its
//!   prefix (`/prod/token`, `/lambda-url/<function>/token`); the bridge routes on the last path
//!   segment, so the prefix does not matter. The body is moved into a [`FullBody`], no copy.
//! - The response: the body is buffered (at most [`LambdaLayer::answer_limit`] bytes, by default
//!   6 MB, Lambda's own payload limit) and handed over as text when it is UTF-8 (the JSON answers), as
//!   binary otherwise, and empty when empty (a 302). A body that fails or is too large becomes a
//!   502 `server_error` RFC 6749 answer, never an invocation error: Alexa must hear JSON.
//!
//! ```
//! use account_link_bridge::lambda::LambdaService;
//! use account_link_bridge::{FullBody, Provider, TokenExchangeLayer};
//! use tower::{Service, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Stands for the upstream client (`upstream::Upstream`, feature `client`).
//! let upstream = tower::service_fn(|_: http::Request<FullBody>| async {
//!     let answer = r#"{"access_token":"at","token_type":"Bearer"}"#;
//!     Ok::<_, std::convert::Infallible>(
//!         http::Response::builder()
//!             .header("content-type", "application/json")
//!             .body(FullBody::from(answer))
//!             .unwrap(),
//!     )
//! });
//! let token = TokenExchangeLayer::new(Provider::salesforce());
//! let mut function = LambdaService::new(tower::Layer::layer(&token, upstream));
//! // In `main`: `lambda_http::run(function).await`. Here, one request as lambda_http makes it:
//! let request = http::Request::post("/prod/token")
//!     .body(lambda_http::Body::Text(r#"{"grant_type":"authorization_code","code":"c"}"#.into()))
//!     .unwrap();
//! let response = function.ready().await.unwrap().call(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! let lambda_http::Body::Text(json) = response.body() else { panic!("a text body") };
//! assert!(json.contains(r#""expires_in":5400"#));
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::response::Parts;
use http::{Request, Response};
use http_body::Body;
use lambda_http::Body as LambdaBody;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use crate::body::{CollectError, Collector};
use crate::{FullBody, OAuthError};

/// Wraps a service in a [`LambdaService`]: see the [module docs](self).
#[derive(Clone, Debug)]
pub struct LambdaLayer {
    answer_limit: usize,
}

impl LambdaLayer {
    /// The default answer limit: 6 MB, Lambda's payload limit for a synchronous invocation.
    pub const DEFAULT_ANSWER_LIMIT: usize = 6 * 1024 * 1024;

    /// The layer with the default answer limit.
    pub fn new() -> Self {
        LambdaLayer {
            answer_limit: Self::DEFAULT_ANSWER_LIMIT,
        }
    }

    /// The most bytes of an answer handed to Lambda; a longer answer becomes a 502.
    pub fn answer_limit(mut self, bytes: usize) -> Self {
        self.answer_limit = bytes;
        self
    }
}

impl Default for LambdaLayer {
    fn default() -> Self {
        LambdaLayer::new()
    }
}

impl<S> Layer<S> for LambdaLayer {
    type Service = LambdaService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        LambdaService {
            inner,
            answer_limit: self.answer_limit,
        }
    }
}

/// A service on `http::Request<FullBody>` served as a Lambda function: see the
/// [module docs](self).
#[derive(Clone, Debug)]
pub struct LambdaService<S> {
    inner: S,
    answer_limit: usize,
}

impl<S> LambdaService<S> {
    /// Wraps `inner` with the default answer limit.
    pub fn new(inner: S) -> Self {
        LambdaLayer::new().layer(inner)
    }

    /// A [`LambdaLayer`], to wrap services with.
    pub fn layer() -> LambdaLayer {
        LambdaLayer::new()
    }

    crate::inner_service_accessors!();
}

impl<S, B> Service<lambda_http::Request> for LambdaService<S>
where
    S: Service<Request<FullBody>, Response = Response<B>>,
    B: Body<Data = Bytes>,
{
    type Response = Response<LambdaBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: lambda_http::Request) -> Self::Future {
        let request = request.map(|body| match body {
            LambdaBody::Empty => FullBody::default(),
            LambdaBody::Text(text) => FullBody::from(text),
            LambdaBody::Binary(bytes) => FullBody::new(Bytes::from(bytes)),
            other => FullBody::new(Bytes::copy_from_slice(&other)),
        });
        ResponseFuture {
            state: State::Inner {
                future: self.inner.call(request),
            },
            answer_limit: self.answer_limit,
        }
    }
}

pin_project! {
    /// The future of [`LambdaService`]: the inner call, then the answer's body buffered.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        answer_limit: usize,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Inner { #[pin] future: F },
        Body { parts: Option<Parts>, #[pin] body: B, collector: Collector },
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body<Data = Bytes>,
{
    type Output = Result<Response<LambdaBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let (parts, body) = match this.state.as_mut().project() {
                StateProj::Inner { future } => ready!(future.poll(cx))?.into_parts(),
                StateProj::Body {
                    parts,
                    body,
                    collector,
                } => {
                    let collected = ready!(collector.poll_collect(body, cx));
                    let parts = parts.take().expect("polled after completion");
                    return Poll::Ready(Ok(match collected {
                        Ok(bytes) => Response::from_parts(parts, lambda_body(bytes)),
                        Err(error) => unreadable_answer(&error),
                    }));
                }
            };
            this.state.set(State::Body {
                parts: Some(parts),
                body,
                collector: Collector::new(*this.answer_limit),
            });
        }
    }
}

/// Text when the answer is UTF-8, so that API Gateway passes JSON as it is; binary (base64 on
/// the wire) otherwise.
fn lambda_body(bytes: Bytes) -> LambdaBody {
    if bytes.is_empty() {
        return LambdaBody::Empty;
    }
    match String::from_utf8(Vec::from(bytes)) {
        Ok(text) => LambdaBody::Text(text),
        Err(not_text) => LambdaBody::Binary(not_text.into_bytes()),
    }
}

fn unreadable_answer<E>(error: &CollectError<E>) -> Response<LambdaBody> {
    let description = match error {
        CollectError::TooLarge => "the answer is too large for AWS Lambda",
        CollectError::Body(_) => "the answer could not be read",
    };
    tracing::warn!(target: "account_link_bridge::lambda", "{description}");
    OAuthError::server_error(description)
        .into_response::<Bytes>()
        .map(lambda_body)
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::convert::Infallible;
    use tower::ServiceExt;

    fn echo(
    ) -> impl Service<Request<FullBody>, Response = Response<FullBody>, Error = Infallible> + Clone
    {
        tower::service_fn(|request: Request<FullBody>| async move {
            let body = Bytes::copy_from_slice(request.body().as_bytes());
            Ok::<_, Infallible>(Response::new(FullBody::new(body)))
        })
    }

    async fn answer(body: LambdaBody) -> Response<LambdaBody> {
        let request = Request::post("/token").body(body).unwrap();
        LambdaService::new(echo()).oneshot(request).await.unwrap()
    }

    #[tokio::test]
    async fn text_binary_and_empty_bodies_cross_both_ways() {
        let text = answer(LambdaBody::Text("grant_type=x".into())).await;
        assert_eq!(text.body(), &LambdaBody::Text("grant_type=x".into()));
        let binary = answer(LambdaBody::Binary(vec![0xff, 0x00])).await;
        assert_eq!(binary.body(), &LambdaBody::Binary(vec![0xff, 0x00]));
        let utf8 = answer(LambdaBody::Binary(b"a=1".to_vec())).await;
        assert_eq!(utf8.body(), &LambdaBody::Text("a=1".into()));
        assert_eq!(answer(LambdaBody::Empty).await.body(), &LambdaBody::Empty);
    }

    #[tokio::test]
    async fn an_answer_over_the_limit_becomes_a_json_server_error() {
        let request = Request::post("/token")
            .body(LambdaBody::Text("0123456789".into()))
            .unwrap();
        let response = LambdaLayer::new()
            .answer_limit(4)
            .layer(echo())
            .oneshot(request)
            .await
            .unwrap();
        assert_eq!(response.status(), 502);
        let LambdaBody::Text(json) = response.body() else {
            panic!("a text body");
        };
        assert!(json.contains(r#""error":"server_error""#), "{json}");
    }
}

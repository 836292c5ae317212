//! The bridge's routes as one Tower service, shared by the standalone server (the `bridge`
//! binary) and the AWS Lambda entry point (`bridge-lambda`), so that neither copies the routing.
//!
//! | route | answer |
//! | --- | --- |
//! | `POST /token` | the token exchange ([`TokenExchangeLayer`] over the token service) |
//! | any other method on `/token` | 405 JSON, `Allow: POST` |
//! | `GET /authorize`, `GET /callback` | the authorization middleman, when configured ([`Bridge::with_authorize`]) |
//! | `GET /healthz` | 200 `ok` |
//! | anything else | 404 JSON |
//!
//! Token exchanges in flight are bounded where the bound protects something: at the upstream
//! client ([`Upstream::max_concurrent_calls`]), whose clones share one limit, so that the token
//! route and the implicit grant's `/callback` exchanges count against it together. Past the
//! bound the bridge sheds load with an immediate 503 `temporarily_unavailable` JSON answer
//! instead of queueing, so an overload never turns into answers later than Alexa's 4.5 s. The
//! routes themselves hold nothing while Alexa's body is read: a client that sends its body
//! slowly takes no place under the bound (the server bounds how long a body may take, as
//! [`serve`](crate::serve) does).
//!
//! The routes are observed by a [`DiagnosticsLayer`](account_link_bridge::diagnostics::DiagnosticsLayer).
//! Each token exchange is logged as one structured `tracing` event at INFO on the target
//! `account_link_bridge::exchange`: grant type, upstream status, outcome (an
//! [`Outcome`](account_link_bridge::diagnostics::Outcome)), answered error, status and latency. It carries no secret: no client secret, code or token ever reaches a log field.
//! The detailed record of each exchange and each `/authorize` or `/callback` answer (what Alexa
//! sent, what went upstream, what came back, what the bridge did) is emitted at DEBUG on
//! `account_link_bridge::trace`, with metrics under the `metrics` feature: see
//! [`diagnostics`](account_link_bridge::diagnostics).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::Bytes;
use http::header::{ALLOW, CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use account_link_bridge::authorize::AuthorizeRedirect;
use account_link_bridge::diagnostics::Diagnostics;
use account_link_bridge::refresh::RefreshRecords;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{
    body::ResponseBody, exchange::TokenExchange, FullBody, OAuthError, Provider, TokenExchangeLayer,
};

/// The bridge's routes: see the [module docs](self).
///
/// ```no_run
/// use account_link_bridge::{upstream::Upstream, Provider};
/// use account_link_bridge_server::Bridge;
///
/// let upstream = Upstream::new("https://login.salesforce.com/services/oauth2/token".parse().unwrap());
/// let bridge = Bridge::new(Provider::salesforce(), upstream);
/// // Serve `bridge` with hyper, or hand it to `lambda_http::run`.
/// ```
#[derive(Clone)]
pub struct Bridge<T = TokenExchange<Upstream>> {
    token: Diagnostics<T>,
    authorize: Option<Diagnostics<AuthorizeRedirect>>,
}

impl Bridge {
    /// The bridge for `provider`, sending token requests to `upstream` (whose
    /// [`Upstream::max_concurrent_calls`] bounds the exchanges in flight).
    pub fn new(provider: Provider, upstream: Upstream) -> Self {
        Bridge::with_token_service(TokenExchangeLayer::new(provider).layer(upstream))
    }

    /// The bridge with the authorization middleman on `/authorize` and `/callback`; its token
    /// route redeems the sealed codes the middleman hands out ([`SealedCodeOpener`]).
    ///
    /// [`SealedCodeOpener`]: account_link_bridge::authorize::SealedCodeOpener
    pub fn with_authorize(
        provider: Provider,
        upstream: Upstream,
        authorize: AuthorizeRedirect,
    ) -> Self {
        let provider = provider.token_request_hook(authorize.code_opener());
        Bridge {
            authorize: Some(Diagnostics::new(authorize)),
            ..Bridge::with_token_service(TokenExchangeLayer::new(provider).layer(upstream))
        }
    }

    /// Keeps refresh records on the token route (see [`refresh`](account_link_bridge::refresh)). Give the
    /// [`Upstream`] a timeout of at least [`RefreshRecords`]' completion timeout: with records,
    /// Alexa's deadline is [`RefreshRecords::answer_deadline`], and the upstream call goes on
    /// after it.
    pub fn refresh_records(mut self, records: RefreshRecords) -> Self {
        self.token.get_mut().get_mut().set_records(Some(records));
        self
    }
}

impl<T> Bridge<T> {
    /// A bridge whose `/token` route is `token`, a service already wrapped as needed.
    pub fn with_token_service(token: T) -> Self {
        Bridge {
            token: Diagnostics::new(token),
            authorize: None,
        }
    }
}

impl<T> fmt::Debug for Bridge<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bridge").finish_non_exhaustive()
    }
}

/// The routes a path names; matched on the last segment so that the bridge can sit under a
/// prefix (`/lambda-url/<function>/token`, `/prod/token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Route {
    Token,
    Authorize,
    Health,
    NotFound,
}

fn route(path: &str) -> Route {
    match path.trim_end_matches('/').rsplit('/').next() {
        Some("token") => Route::Token,
        Some("healthz") => Route::Health,
        Some("authorize" | "callback") => Route::Authorize,
        _ => Route::NotFound,
    }
}

impl<T, B, TB> Service<Request<B>> for Bridge<T>
where
    T: Service<Request<B>, Response = Response<ResponseBody<TB>>, Error = Infallible> + Clone,
    TB: Body,
{
    type Response = Response<ResponseBody<TB>>;
    type Error = Infallible;
    type Future = RouteFuture<Diagnostics<T>, B>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        // Readiness is awaited per route inside the future, on a clone of the token service, so
        // that a health check never waits for the token route.
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        match (route(request.uri().path()), request.method()) {
            (Route::Token, &Method::POST) => RouteFuture::token(self.token.clone(), request),
            (Route::Token, _) => {
                let mut response: Response<ResponseBody<FullBody>> =
                    OAuthError::invalid_request("the token endpoint accepts only POST")
                        .with_status(StatusCode::METHOD_NOT_ALLOWED)
                        .into_response();
                response
                    .headers_mut()
                    .insert(ALLOW, HeaderValue::from_static("POST"));
                RouteFuture::ready(response)
            }
            (Route::Authorize, _) if self.authorize.is_some() => {
                let authorize = self.authorize.as_mut().expect("checked above");
                RouteFuture::authorize(authorize.call(request))
            }
            (Route::Health, &Method::GET | &Method::HEAD) => {
                let mut response = Response::new(ResponseBody::from(Bytes::from_static(b"ok\n")));
                let headers = response.headers_mut();
                headers.insert(
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/plain; charset=utf-8"),
                );
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
                RouteFuture::ready(response)
            }
            _ => RouteFuture::ready(
                OAuthError::invalid_request("no such route")
                    .with_status(StatusCode::NOT_FOUND)
                    .into_response(),
            ),
        }
    }
}

pin_project! {
    /// The future of [`Bridge`]: a token exchange, or an answer known at once.
    pub struct RouteFuture<T, B>
    where
        T: Service<Request<B>>,
    {
        #[pin]
        kind: RouteKind<T, B, T::Future>,
    }
}

pin_project! {
    #[project = RouteKindProj]
    enum RouteKind<T, B, F> {
        Waiting { service: T, request: Option<Request<B>> },
        Token { #[pin] future: F },
        Authorize { #[pin] future: account_link_bridge::diagnostics::ResponseFuture<account_link_bridge::authorize::ResponseFuture> },
        Ready { response: Option<Response<ResponseBody<FullBody>>> },
    }
}

impl<T, B> RouteFuture<T, B>
where
    T: Service<Request<B>>,
{
    fn token(service: T, request: Request<B>) -> Self {
        RouteFuture {
            kind: RouteKind::Waiting {
                service,
                request: Some(request),
            },
        }
    }

    fn authorize(
        future: account_link_bridge::diagnostics::ResponseFuture<
            account_link_bridge::authorize::ResponseFuture,
        >,
    ) -> Self {
        RouteFuture {
            kind: RouteKind::Authorize { future },
        }
    }

    fn ready(response: Response<ResponseBody<FullBody>>) -> Self {
        RouteFuture {
            kind: RouteKind::Ready {
                response: Some(response),
            },
        }
    }
}

impl<T, B, TB> Future for RouteFuture<T, B>
where
    T: Service<Request<B>, Response = Response<ResponseBody<TB>>, Error = Infallible>,
{
    type Output = Result<Response<ResponseBody<TB>>, Infallible>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let future = match this.kind.as_mut().project() {
                RouteKindProj::Waiting { service, request } => {
                    ready!(service.poll_ready(cx))?;
                    service.call(request.take().expect("polled after completion"))
                }
                RouteKindProj::Token { future } => {
                    return future.poll(cx);
                }
                RouteKindProj::Authorize { future } => {
                    let response = ready!(future.poll(cx))?;
                    return Poll::Ready(Ok(response.map(ResponseBody::full)));
                }
                RouteKindProj::Ready { response } => {
                    let response = response.take().expect("polled after completion");
                    return Poll::Ready(Ok(response.map(|body| body.into_other())));
                }
            };
            this.kind.set(RouteKind::Token { future });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_match_the_last_path_segment() {
        assert_eq!(route("/token"), Route::Token);
        assert_eq!(route("/lambda-url/fn/token"), Route::Token);
        assert_eq!(route("/token/"), Route::Token);
        assert_eq!(route("/healthz"), Route::Health);
        assert_eq!(route("/authorize"), Route::Authorize);
        assert_eq!(route("/prod/callback"), Route::Authorize);
        assert_eq!(route("/tokens"), Route::NotFound);
        assert_eq!(route("/"), Route::NotFound);
    }
}

//! Normalizing Alexa's token requests into what the upstream wants.
//!
//! [`NormalizeTokenRequestLayer`] reads the body Alexa POSTed to the access token URI (a form or
//! JSON, with or without Content-Type, credentials in HTTP Basic or the body), parses it into a
//! [`TokenRequest`], and hands the inner service a clean request:
//!
//! - a form body encoded with `form_urlencoded` (RFC 6749 Appendix B), holding only the
//!   parameters present, in Alexa's order, then the provider's extra parameters;
//! - `Content-Type: application/x-www-form-urlencoded`, `Accept: application/json`, a correct
//!   `Content-Length`, and the provider's extra headers;
//! - the client credentials where the provider wants them ([`ClientAuth`]);
//! - no other header of Alexa's: nothing it sent (cookies, `Transfer-Encoding`,
//!   `Accept-Encoding`, a stale `Authorization`) reaches the upstream;
//! - the parsed [`TokenRequest`] in the request extensions, for the response layer.
//!
//! Bad input is answered by the layer itself with an RFC 6749 JSON error and never reaches the
//! inner service: see [`TokenRequest::parse_with`] for the rules, and a body over the limit
//! (default 16 KiB) gets 413.
//!
//! ```
//! use account_link_bridge::{FullBody, token_request::NormalizeTokenRequestLayer, TokenRequest};
//! use http::{Request, Response};
//! use tower::{service_fn, ServiceBuilder, ServiceExt};
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let upstream = service_fn(|request: Request<FullBody>| async move {
//!     // What the upstream receives: an encoded form with the right headers.
//!     assert_eq!(request.headers()["content-type"], "application/x-www-form-urlencoded");
//!     assert_eq!(request.body().as_bytes(), b"grant_type=authorization_code&code=a%26b");
//!     assert!(request.extensions().get::<TokenRequest>().is_some());
//!     Ok::<_, std::convert::Infallible>(Response::new(FullBody::from("{}")))
//! });
//! let service = ServiceBuilder::new()
//!     .layer(NormalizeTokenRequestLayer::new())
//!     .service(upstream);
//!
//! // JSON without a Content-Type, as Alexa was seen sending it:
//! let request = Request::post("/token")
//!     .body(FullBody::from(r#"{"grant_type":"authorization_code","code":"a&b"}"#))
//!     .unwrap();
//! let response = service.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

mod facts;
mod future;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE};
use http::request::Parts;
use http::{HeaderMap, HeaderValue, Method, Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

pub use self::facts::RequestFacts;
pub use self::future::ResponseFuture;

use crate::body::{FullBody, ResponseBody};
use crate::oauth::{ClientAuth, GrantType, TokenRequest};
use crate::provider::{Provider, RequestPolicy};

/// Layer that normalizes Alexa's token requests: see the [module docs](self).
#[derive(Clone)]
pub struct NormalizeTokenRequestLayer {
    policy: Arc<RequestPolicy>,
}

impl NormalizeTokenRequestLayer {
    /// The layer with [`Provider::generic`]'s request settings: credentials in the body, the
    /// `authorization_code` and `refresh_token` grants, a 16 KiB body limit.
    pub fn new() -> Self {
        Self::for_provider(&Provider::generic())
    }

    /// The layer with a provider's request settings.
    pub fn for_provider(provider: &Provider) -> Self {
        NormalizeTokenRequestLayer {
            policy: provider.request.clone(),
        }
    }

    /// Where the upstream wants client credentials.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        Arc::make_mut(&mut self.policy).client_auth = auth;
        self
    }

    /// The grant types let through; others get `unsupported_grant_type`.
    pub fn grant_types(mut self, grant_types: impl IntoIterator<Item = GrantType>) -> Self {
        Arc::make_mut(&mut self.policy).grant_types = grant_types.into_iter().collect();
        self
    }

    /// Adds a step run on every parsed token request before it is encoded for the upstream
    /// (the name of [`Provider::token_request_hook`](crate::Provider::token_request_hook)).
    pub fn token_request_hook(mut self, hook: impl crate::provider::TokenRequestHook) -> Self {
        Arc::make_mut(&mut self.policy).hooks.push(Arc::new(hook));
        self
    }

    /// The earlier name of [`NormalizeTokenRequestLayer::token_request_hook`].
    #[deprecated(note = "use token_request_hook, the Provider's name for it")]
    pub fn hook(self, hook: impl crate::provider::TokenRequestHook) -> Self {
        self.token_request_hook(hook)
    }

    /// The largest body accepted, in bytes; larger bodies get 413 (the name of
    /// [`Provider::request_body_limit`](crate::Provider::request_body_limit)).
    pub fn request_body_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.policy).body_limit = limit;
        self
    }

    /// The earlier name of [`NormalizeTokenRequestLayer::request_body_limit`].
    #[deprecated(note = "use request_body_limit, the Provider's name for it")]
    pub fn body_limit(self, limit: usize) -> Self {
        self.request_body_limit(limit)
    }
}

impl Default for NormalizeTokenRequestLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for NormalizeTokenRequestLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormalizeTokenRequestLayer")
            .field("client_auth", &self.policy.client_auth)
            .field("grant_types", &self.policy.grant_types)
            .field("body_limit", &self.policy.body_limit)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for NormalizeTokenRequestLayer {
    type Service = NormalizeTokenRequest<S>;

    fn layer(&self, inner: S) -> Self::Service {
        NormalizeTokenRequest {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Middleware that normalizes Alexa's token requests: see the [module docs](self).
#[derive(Clone)]
pub struct NormalizeTokenRequest<S> {
    inner: S,
    policy: Arc<RequestPolicy>,
}

impl<S> NormalizeTokenRequest<S> {
    /// Wraps `inner` with the generic provider's request settings.
    pub fn new(inner: S) -> Self {
        NormalizeTokenRequestLayer::new().layer(inner)
    }

    /// A layer with the generic provider's settings.
    pub fn layer() -> NormalizeTokenRequestLayer {
        NormalizeTokenRequestLayer::new()
    }

    crate::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for NormalizeTokenRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NormalizeTokenRequest")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, B, ResBody> Service<Request<B>> for NormalizeTokenRequest<S>
where
    S: Service<Request<FullBody>, Response = Response<ResBody>> + Clone,
    B: Body,
{
    type Response = Response<ResponseBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S, B>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let (parts, body) = request.into_parts();
        let limit = self.policy.body_limit;
        let declared = parts
            .headers
            .get(CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > limit as u64) {
            return ResponseFuture::refused(crate::OAuthError::payload_too_large(limit));
        }
        // The ready service goes into the future; a clone stays for the next call (the idiom
        // tower documents for services that move into their future).
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture::reading(parts, body, inner, self.policy.clone())
    }
}

/// Builds the request the upstream receives. Only the headers the exchange needs are set.
pub(crate) fn upstream_request(
    mut parts: Parts,
    token_request: TokenRequest,
    policy: &RequestPolicy,
    facts: &mut RequestFacts,
) -> Request<FullBody> {
    let (body, authorization) = token_request.to_form(policy.client_auth, &policy.extra_params);
    let mut headers = HeaderMap::with_capacity(5 + policy.extra_headers.len());
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    if let Some(authorization) = authorization {
        headers.insert(AUTHORIZATION, authorization);
    }
    for (name, value) in &policy.extra_headers {
        headers.insert(name.clone(), value.clone());
    }
    facts.upstream_sent(&body, &headers);
    parts.headers = headers;
    parts.method = Method::POST;
    parts.extensions.insert(token_request);
    Request::from_parts(parts, FullBody::new(body))
}

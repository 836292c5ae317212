//! Rewriting upstream token answers into the JSON Alexa needs.
//!
//! [`RewriteTokenResponseLayer`] buffers the upstream's answer (up to a limit, default 64 KiB)
//! and answers Alexa with RFC 6749 §5.1 JSON it can live with:
//!
//! - `expires_in` always present and an integer: the configured default when the upstream gives
//!   none (Salesforce), a string of digits converted (Azure AD v1), optionally clamped. When
//!   the upstream gives none and the access token is a JWT with an `exp` claim (Salesforce's
//!   JWT-based access tokens), the seconds until `exp` replace the default: the payload is
//!   only decoded (base64url), no signature is checked, and a token expiring sooner than
//!   Alexa's 360 s (or already expired: a clock skew, most likely) is answered 360 with a
//!   warning. An `expires_in` the upstream did send always wins over the JWT;
//! - fields such as Salesforce's `instance_url` packed into the access token
//!   ([`PackFormat`]);
//! - on a refresh, the refresh token Alexa sent echoed when the upstream omits one (RFC 6749 §6);
//!   a rotated refresh token the upstream does send passes through untouched;
//! - `token_type` defaulting to `Bearer`; other fields passed through as the upstream wrote
//!   them, in its order (the fields the rewrite adds come last);
//! - `Content-Type: application/json;charset=UTF-8`, `Cache-Control: no-store`,
//!   `Pragma: no-cache`, a correct `Content-Length`, and no other upstream header.
//!
//! Errors: a 400/401 JSON (or form) answer with an `error` code, or a 2xx answer the provider
//! marks as an error (GitHub's `error` field, Slack's `ok:false`), is relayed as an RFC 6749
//! error. Anything else that is not a token (HTML, a 5xx, a body that cannot be read, a 2xx
//! without `access_token`) is a fault on the path and becomes 502 `server_error` (503/504
//! `temporarily_unavailable` for 429/503/504): never `invalid_grant` or `invalid_client`, which
//! make Alexa unlink the user. Descriptions name the upstream status, never a body excerpt.
//!
//! A JSON answer is read as one object of at most 256 top-level fields, as strictly as
//! `serde_json` reads it (a repeated name keeps its first place and its last value), without
//! building a tree: the rewrite alone takes about 1.2 µs and five allocations for a Salesforce
//! answer on a 2-core development machine (`BENCHMARKS.md`).
//!
//! The layer reads the [`TokenRequest`] that
//! [`NormalizeTokenRequestLayer`](crate::token_request::NormalizeTokenRequestLayer) put in the request
//! extensions to know the grant type and the refresh token sent. Each answer carries a
//! [`RewriteReport`] in its extensions saying what was seen and done.

mod answer;
mod future;
mod jwt;
mod rewrite;

use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

pub(crate) use self::answer::aged as aged_answer;
pub(crate) use self::future::token_response;
pub use self::future::ResponseFuture;
pub use self::rewrite::{ExpiresInAction, RewriteReport};

/// The earlier name of [`AnswerKind`](crate::diagnostics::AnswerKind), the one vocabulary of
/// what the upstream answered.
#[deprecated(note = "use account_link_bridge::diagnostics::AnswerKind")]
pub type AnswerShape = crate::outcome::AnswerKind;

use crate::body::FullBody;
use crate::provider::{Provider, ResponsePolicy};
use crate::{pack::PackFormat, provider::ExpiresIn, TokenRequest};

/// Layer that rewrites upstream token answers: see the [module docs](self).
#[derive(Clone)]
pub struct RewriteTokenResponseLayer {
    policy: Arc<ResponsePolicy>,
}

impl RewriteTokenResponseLayer {
    /// The layer with [`Provider::generic`]'s answer settings: `expires_in` 3600 s when absent,
    /// nothing packed, a 64 KiB answer limit.
    pub fn new() -> Self {
        Self::for_provider(&Provider::generic())
    }

    /// The layer with a provider's answer settings.
    pub fn for_provider(provider: &Provider) -> Self {
        RewriteTokenResponseLayer {
            policy: provider.response.clone(),
        }
    }

    /// The `expires_in` policy.
    pub fn expires_in(mut self, expires_in: ExpiresIn) -> Self {
        Arc::make_mut(&mut self.policy).expires_in = expires_in;
        self
    }

    /// The pack format.
    pub fn pack(mut self, format: PackFormat) -> Self {
        Arc::make_mut(&mut self.policy).pack = format;
        self
    }

    /// Packs one more answer field into the access token.
    pub fn pack_field(mut self, name: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        let policy = Arc::make_mut(&mut self.policy);
        policy.pack = std::mem::take(&mut policy.pack).field(name);
        self
    }

    /// Rewrites one upstream answer without any I/O: what the layer does once it has read the
    /// answer's body. `Ok` is the JSON of a 200 for Alexa; `Err` the RFC 6749 error to answer.
    /// `request` is the token request the answer is for, when known (for the refresh-token echo
    /// and to keep its secrets out of error descriptions).
    pub fn rewrite_answer(
        &self,
        status: http::StatusCode,
        headers: &http::HeaderMap,
        body: &[u8],
        request: Option<&TokenRequest>,
    ) -> (Result<bytes::Bytes, crate::OAuthError>, RewriteReport) {
        let mut report = RewriteReport::new(Some(status));
        report.grant_type = request.map(|r| r.grant_type().clone());
        let result = rewrite::rewrite(status, headers, body, request, &self.policy, &mut report);
        (result, report)
    }

    /// The largest upstream answer read, in bytes; larger answers become 502 `server_error`
    /// (the name of [`Provider::answer_body_limit`](crate::Provider::answer_body_limit)).
    pub fn answer_body_limit(mut self, limit: usize) -> Self {
        Arc::make_mut(&mut self.policy).body_limit = limit;
        self
    }

    /// The earlier name of [`RewriteTokenResponseLayer::answer_body_limit`].
    #[deprecated(note = "use answer_body_limit, the Provider's name for it")]
    pub fn body_limit(self, limit: usize) -> Self {
        self.answer_body_limit(limit)
    }
}

impl Default for RewriteTokenResponseLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RewriteTokenResponseLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewriteTokenResponseLayer")
            .field("expires_in", &self.policy.expires_in)
            .field("pack", &self.policy.pack)
            .field("body_limit", &self.policy.body_limit)
            .finish_non_exhaustive()
    }
}

impl<S> Layer<S> for RewriteTokenResponseLayer {
    type Service = RewriteTokenResponse<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RewriteTokenResponse {
            inner,
            policy: self.policy.clone(),
        }
    }
}

/// Middleware that rewrites upstream token answers: see the [module docs](self).
#[derive(Clone)]
pub struct RewriteTokenResponse<S> {
    inner: S,
    policy: Arc<ResponsePolicy>,
}

impl<S> RewriteTokenResponse<S> {
    /// Wraps `inner` with the generic provider's answer settings.
    pub fn new(inner: S) -> Self {
        RewriteTokenResponseLayer::new().layer(inner)
    }

    /// A layer with the generic provider's settings.
    pub fn layer() -> RewriteTokenResponseLayer {
        RewriteTokenResponseLayer::new()
    }

    crate::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RewriteTokenResponse<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RewriteTokenResponse")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for RewriteTokenResponse<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    ResBody: Body,
{
    type Response = Response<FullBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, ResBody>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let token_request = request.extensions().get::<TokenRequest>().cloned();
        ResponseFuture::new(self.inner.call(request), token_request, self.policy.clone())
    }
}

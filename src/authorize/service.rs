//! The [`AuthorizeRedirect`] service: routes `/authorize` and `/callback` and reads the query.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::header::ALLOW;
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_service::Service;
use url::Url;

use super::callback::callback;
use super::future::ResponseFuture;
use super::page::{page, refusal};
use super::report::{AuthorizeReport, AuthorizeRoute, AuthorizeVerdict};
use super::start::authorize;
use super::{AlexaRedirects, AuthorizeRedirectBuilder, Config, GrantMode, SealedCodeOpener};
use crate::body::FullBody;
use crate::state::StateSealer;

/// The longest query string read.
const MAX_QUERY: usize = 8 * 1024;

/// The authorization middleman service: see the [module docs](super).
///
/// Cheap to clone: the configuration is shared.
#[derive(Clone)]
pub struct AuthorizeRedirect {
    config: Arc<Config>,
}

impl AuthorizeRedirect {
    /// Starts a builder.
    pub fn builder() -> AuthorizeRedirectBuilder {
        AuthorizeRedirectBuilder::default()
    }

    pub(super) fn from_config(config: Config) -> Self {
        AuthorizeRedirect {
            config: Arc::new(config),
        }
    }

    /// The `redirect_uri` the bridge gives the upstream: `<public URL>/callback`.
    pub fn callback_url(&self) -> &Url {
        &self.config.callback_url
    }

    /// Whether Alexa gets a code or, in implicit mode, the token.
    pub fn grant_mode(&self) -> GrantMode {
        self.config.grant_mode()
    }

    /// The sealer of states and codes.
    pub fn sealer(&self) -> &StateSealer {
        &self.config.sealer
    }

    /// The redirect URLs this service accepts from Alexa.
    pub fn redirects(&self) -> &AlexaRedirects {
        &self.config.redirects
    }

    /// The token-endpoint hook that opens the codes this service hands out (with
    /// [`AuthorizeRedirectBuilder::refuse_plain_codes`] applied).
    pub fn code_opener(&self) -> SealedCodeOpener {
        SealedCodeOpener::new(self.config.sealer.clone())
            .refuse_plain_codes(self.config.refuse_plain_codes)
            .state_key_setting(&*self.config.state_key_setting)
            .with_code_lifetime(self.config.code_lifetime)
    }
}

impl fmt::Debug for AuthorizeRedirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.config.fmt(f)
    }
}

impl<B> Service<Request<B>> for AuthorizeRedirect {
    type Response = Response<FullBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> ResponseFuture {
        let config = &self.config;
        let path = request.uri().path();
        let route = if path.ends_with("/authorize") {
            Route::Authorize
        } else if path.ends_with("/callback") {
            Route::Callback
        } else {
            return ResponseFuture::ready(page(StatusCode::NOT_FOUND, "Not found", "no such page"));
        };
        if request.method() != Method::GET && request.method() != Method::HEAD {
            let mut response = page(
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
                "only GET is allowed here",
            );
            response
                .headers_mut()
                .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
            return ResponseFuture::ready(response);
        }
        let mut report = AuthorizeReport::new(match route {
            Route::Authorize => AuthorizeRoute::Authorize,
            Route::Callback => AuthorizeRoute::Callback,
        });
        let query = request.uri().query().unwrap_or("");
        if query.len() > MAX_QUERY {
            report.verdict(AuthorizeVerdict::Refused, "the request is too large");
            return ResponseFuture::ready(refusal("the request is too large")).with_report(report);
        }
        let params = Params::parse(query);
        match route {
            Route::Authorize => {
                ResponseFuture::ready(authorize(config, &params, &mut report)).with_report(report)
            }
            Route::Callback => callback(config, params, report),
        }
    }
}

enum Route {
    Authorize,
    Callback,
}

/// The query parameters, with repeated ones detectable (RFC 6749 §3.1: parameters must not be
/// included more than once).
pub(super) struct Params(Vec<(String, String)>);

impl Params {
    pub(super) fn parse(query: &str) -> Self {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The parameter's value; `Err` when it is repeated. Empty values count as absent.
    pub(super) fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(Repeated);
        }
        Ok(first.map(String::as_str).filter(|v| !v.is_empty()))
    }
}

/// A parameter sent more than once.
pub(super) struct Repeated;

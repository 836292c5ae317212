//! The upstream client: a Tower service that sends the normalized token request to the one
//! configured upstream URL and never fails with an error that would drop Alexa's connection.
//!
//! [`Upstream`] is a pooled keep-alive [`hyper_util`] client with rustls (HTTP/1.1 and HTTP/2 by
//! ALPN, webpki roots by default, or your own [`rustls::ClientConfig`]). It is **pinned**: it sets
//! the scheme, authority and path of every request to the configured URL, so the path Alexa
//! called never decides where a request goes. One call, including reading the whole answer (at
//! most [`Upstream::answer_limit`] bytes), is bounded by [`Upstream::timeout`]: 4 s by default,
//! because Alexa gives the whole token answer 4.5 s and should hear a JSON error rather than
//! time out itself. With [refresh records](crate::refresh) that deadline is the records'
//! ([`RefreshRecords::answer_deadline`](crate::refresh::RefreshRecords::answer_deadline)) and
//! this timeout bounds the call run to completion behind it (give it the records'
//! completion timeout, 30 s), so that a late answer can still be kept.
//!
//! Calls in flight are bounded ([`Upstream::max_concurrent_calls`], default
//! [`Upstream::DEFAULT_MAX_CONCURRENT_CALLS`]), and **clones share the bound**: the token route
//! and the implicit grant's `/callback` exchange, given clones of one `Upstream`, count against
//! the same limit. Past it, a call is answered at once with 503 `temporarily_unavailable`
//! instead of queueing, so an overload never turns into answers later than Alexa's 4.5 s. The
//! permit is taken when the call starts, after the request layer has read Alexa's whole body:
//! a client that sends its body slowly holds no permit, so a handful of slow clients cannot
//! stop the exchanges of everyone else. Each shed call is counted in the metrics; the WARN line
//! saying so is written at most once a second (with the number shed since), so that an
//! overload does not also flood the logs.
//!
//! Failures become RFC 6749 JSON answers (with the [`OAuthError`] in the response extensions,
//! which [`RewriteTokenResponse`](crate::token_response::RewriteTokenResponse) relays as they are):
//!
//! | failure | status | `error` |
//! | --- | --- | --- |
//! | no answer within the timeout | 504 | `temporarily_unavailable` |
//! | connection refused, DNS failure, connection reset | 502 | `temporarily_unavailable` |
//! | TLS handshake or certificate failure | 502 | `server_error` |
//! | answer broke off, or over the size cap | 502 | `server_error` |
//! | too many calls in flight (shed, the upstream is not called) | 503 | `temporarily_unavailable` |
//!
//! ```no_run
//! use account_link_bridge::{upstream::Upstream, Provider, TokenExchangeLayer};
//! use tower::ServiceBuilder;
//!
//! let upstream = Upstream::new("https://login.salesforce.com/services/oauth2/token".parse().unwrap());
//! let token_endpoint = ServiceBuilder::new()
//!     .layer(TokenExchangeLayer::new(Provider::salesforce()))
//!     .service(upstream);
//! ```

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use crate::throttle::LogThrottle;

use http::header::HOST;
use http::uri::{Authority, PathAndQuery, Scheme};
use http::{Request, Response, StatusCode, Uri, Version};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::sync::Semaphore;
use tower_service::Service;

use crate::body::{CollectError, Collector, FullBody};
use crate::OAuthError;

/// The upstream client service: see the [module docs](self).
#[derive(Clone)]
pub struct Upstream {
    client: Client<HttpsConnector<HttpConnector>, FullBody>,
    target: Arc<Target>,
    timeout: Duration,
    answer_limit: usize,
    in_flight: Arc<CallLimit>,
}

/// The bound on calls in flight, shared by clones.
struct CallLimit {
    max: usize,
    slots: Arc<Semaphore>,
    shed_log: LogThrottle,
}

impl CallLimit {
    fn new(max: usize) -> Arc<Self> {
        Arc::new(CallLimit {
            max,
            slots: Arc::new(Semaphore::new(max.min(Semaphore::MAX_PERMITS))),
            shed_log: LogThrottle::new(),
        })
    }
}

struct Target {
    uri: Uri,
    scheme: Scheme,
    authority: Authority,
    path_and_query: PathAndQuery,
}

impl Upstream {
    /// The default per-call timeout: 4 s, inside Alexa's 4.5 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(4);
    /// The default answer-size cap: 64 KiB.
    pub const DEFAULT_ANSWER_LIMIT: usize = 64 * 1024;
    /// The default bound on calls in flight.
    pub const DEFAULT_MAX_CONCURRENT_CALLS: usize = 1024;

    /// A client pinned to `url` (http or https), trusting the webpki roots.
    ///
    /// # Panics
    ///
    /// When `url` has no scheme or authority; use [`Upstream::try_new`] to handle that.
    pub fn new(url: Uri) -> Self {
        Self::try_new(url).expect("the upstream URL must be absolute (scheme and host)")
    }

    /// A client pinned to `url`, or an error saying why the URL cannot be used.
    pub fn try_new(url: Uri) -> Result<Self, InvalidUpstreamUrl> {
        Self::with_tls(url, default_tls_config())
    }

    /// A client pinned to `url` that uses this rustls configuration (e.g. a private CA).
    pub fn with_tls(url: Uri, tls: rustls::ClientConfig) -> Result<Self, InvalidUpstreamUrl> {
        let parts = url.clone().into_parts();
        let scheme = parts.scheme.ok_or(InvalidUpstreamUrl("it has no scheme"))?;
        if scheme != Scheme::HTTP && scheme != Scheme::HTTPS {
            return Err(InvalidUpstreamUrl("its scheme is neither http nor https"));
        }
        let authority = parts
            .authority
            .ok_or(InvalidUpstreamUrl("it has no host"))?;
        let path_and_query = parts
            .path_and_query
            .unwrap_or_else(|| PathAndQuery::from_static("/"));
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_nodelay(true);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .enable_http2()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(Upstream {
            client,
            target: Arc::new(Target {
                uri: url,
                scheme,
                authority,
                path_and_query,
            }),
            timeout: Self::DEFAULT_TIMEOUT,
            answer_limit: Self::DEFAULT_ANSWER_LIMIT,
            in_flight: CallLimit::new(Self::DEFAULT_MAX_CONCURRENT_CALLS),
        })
    }

    /// Bounds the calls in flight; past it, 503 `temporarily_unavailable` at once. The bound
    /// is shared with the clones made *after* this call (set it before handing clones to the
    /// token route and the implicit grant).
    pub fn max_concurrent_calls(mut self, n: usize) -> Self {
        self.in_flight = CallLimit::new(n);
        self
    }

    /// Sets the per-call timeout (connect, send, and read the whole answer).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the answer-size cap, in bytes.
    pub fn answer_limit(mut self, limit: usize) -> Self {
        self.answer_limit = limit;
        self
    }

    /// The URL every request goes to.
    pub fn url(&self) -> &Uri {
        &self.target.uri
    }

    fn pin(&self, request: &mut Request<FullBody>) {
        let target = &*self.target;
        let mut parts = http::uri::Parts::default();
        parts.scheme = Some(target.scheme.clone());
        parts.authority = Some(target.authority.clone());
        parts.path_and_query = Some(target.path_and_query.clone());
        *request.uri_mut() = Uri::from_parts(parts).expect("parts of a valid URI");
        // The client writes Host from the pinned URI; Alexa's Host names the bridge.
        request.headers_mut().remove(HOST);
        *request.version_mut() = Version::HTTP_11;
    }
}

impl fmt::Debug for Upstream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Upstream")
            .field("url", &self.target.uri)
            .field("timeout", &self.timeout)
            .field("answer_limit", &self.answer_limit)
            .field("max_concurrent_calls", &self.in_flight.max)
            .finish()
    }
}

/// Why a URL cannot be an upstream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidUpstreamUrl(&'static str);

impl fmt::Display for InvalidUpstreamUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid upstream URL: {}", self.0)
    }
}

impl StdError for InvalidUpstreamUrl {}

/// The rustls configuration [`Upstream::new`] uses: the webpki roots, ring, TLS 1.2 and 1.3.
pub fn default_tls_config() -> rustls::ClientConfig {
    let roots = rustls::RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    tls_config_with_roots(roots)
}

/// A rustls client configuration trusting exactly these roots (with the ring provider, so it
/// does not depend on a process-wide default provider).
pub fn tls_config_with_roots(roots: rustls::RootCertStore) -> rustls::ClientConfig {
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

impl Service<Request<FullBody>> for Upstream {
    type Response = Response<FullBody>;
    type Error = Infallible;
    // Boxed: the future awaits a network round trip, next to which one allocation is noise
    // (see BENCHMARKS.md); a named future would have to name hyper-util's private types.
    type Future = Pin<Box<dyn Future<Output = Result<Response<FullBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, mut request: Request<FullBody>) -> Self::Future {
        let Ok(permit) = Arc::clone(&self.in_flight.slots).try_acquire_owned() else {
            return Box::pin(std::future::ready(Ok(self.shed())));
        };
        self.pin(&mut request);
        let client = self.client.clone();
        let timeout = self.timeout;
        let limit = self.answer_limit;
        Box::pin(async move {
            // Held until the whole answer is read (or the call failed).
            let _permit = permit;
            let exchange = async move {
                let response = client.request(request).await.map_err(connect_error)?;
                let (parts, mut body) = response.into_parts();
                let mut collector = Collector::new(limit);
                let bytes = poll_fn(|cx| collector.poll_collect(Pin::new(&mut body), cx))
                    .await
                    .map_err(|e| match e {
                        CollectError::TooLarge => OAuthError::server_error(format!(
                            "upstream answer exceeded {limit} bytes"
                        )),
                        CollectError::Body(_) => OAuthError::server_error(format!(
                            "upstream answer (HTTP {}) broke off before its end",
                            parts.status.as_u16()
                        )),
                    })?;
                Ok::<_, OAuthError>(Response::from_parts(parts, FullBody::new(bytes)))
            };
            let error = match tokio::time::timeout(timeout, exchange).await {
                Ok(Ok(response)) => return Ok(response),
                Ok(Err(error)) => error,
                Err(_) => OAuthError::temporarily_unavailable(
                    StatusCode::GATEWAY_TIMEOUT,
                    format!("upstream did not answer within {} ms", timeout.as_millis()),
                ),
            };
            tracing::warn!(
                target: "account_link_bridge::upstream",
                error = %error.code(),
                status = error.status().as_u16(),
                description = error.description().unwrap_or(""),
                "upstream call failed"
            );
            let mut response: Response<FullBody> = error.clone().into_response();
            response.extensions_mut().insert(error);
            Ok(response)
        })
    }
}

impl Upstream {
    /// The answer to a call over the bound: 503 at once, the upstream not called.
    fn shed(&self) -> Response<FullBody> {
        if let Some(suppressed) = self.in_flight.shed_log.due() {
            tracing::warn!(
                target: "account_link_bridge::exchange",
                outcome = "shed",
                max_concurrent_calls = self.in_flight.max,
                shed_since_last_line = suppressed,
                "too many upstream calls in flight: answered 503 (this line is written at most once a second)"
            );
        }
        let error = OAuthError::temporarily_unavailable(
            StatusCode::SERVICE_UNAVAILABLE,
            "the bridge is at its limit of concurrent exchanges; retry shortly",
        );
        let mut response: Response<FullBody> = error.clone().into_response();
        response.extensions_mut().insert(error);
        response
    }
}

/// Classifies a client error by walking its sources; the description names the class only.
fn connect_error(error: hyper_util::client::legacy::Error) -> OAuthError {
    let root: &(dyn StdError + 'static) = &error;
    let chain = || std::iter::successors(Some(root), next_cause);
    if chain().any(|e| e.is::<rustls::Error>()) {
        return OAuthError::server_error("TLS handshake with the upstream failed");
    }
    if chain().any(|e| e.to_string().starts_with("dns error")) {
        return OAuthError::temporarily_unavailable(
            StatusCode::BAD_GATEWAY,
            "upstream host name could not be resolved",
        );
    }
    let class = chain()
        .filter_map(|e| e.downcast_ref::<std::io::Error>())
        .map(|io| io.kind())
        .find(|kind| *kind != std::io::ErrorKind::Other)
        .map(|kind| match kind {
            std::io::ErrorKind::ConnectionRefused => "connection to the upstream refused",
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::ConnectionAborted => {
                "connection to the upstream reset"
            }
            std::io::ErrorKind::TimedOut => "connection to the upstream timed out",
            _ => "connection to the upstream failed",
        })
        .unwrap_or("the upstream closed the connection without an answer");
    OAuthError::temporarily_unavailable(StatusCode::BAD_GATEWAY, class)
}

/// The cause of an error. `io::Error::source` skips the error it wraps, so an `io::Error` is
/// descended with `get_ref`.
fn next_cause<'a>(error: &&'a (dyn StdError + 'static)) -> Option<&'a (dyn StdError + 'static)> {
    let error: &'a (dyn StdError + 'static) = *error;
    match error.downcast_ref::<std::io::Error>() {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn StdError + 'static)),
        None => error.source(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::{ExchangeTrace, Outcome};
    use crate::{Provider, TokenExchangeLayer};
    use tower::ServiceExt;
    use tower_layer::Layer;

    fn refresh() -> Request<FullBody> {
        Request::post("/token")
            .body(FullBody::from(
                r#"{"grant_type":"refresh_token","refresh_token":"r"}"#,
            ))
            .unwrap()
    }

    #[tokio::test]
    async fn a_call_past_the_limit_is_shed_503_without_calling_the_upstream_and_traced_as_shed() {
        // Nothing listens on port 9: a call that went out would be a 502 `unreachable`.
        let upstream =
            Upstream::new("http://127.0.0.1:9/token".parse().unwrap()).max_concurrent_calls(0);
        let exchange = TokenExchangeLayer::new(Provider::generic()).layer(upstream);

        let response = exchange.oneshot(refresh()).await.unwrap();

        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        let trace = ExchangeTrace::from_response(&response, Duration::ZERO);
        assert_eq!(trace.outcome, Outcome::Shed);
        assert_eq!(
            trace.answered_error.as_deref(),
            Some("temporarily_unavailable")
        );
    }

    #[tokio::test]
    async fn clones_share_one_limit_and_a_finished_call_gives_its_place_back() {
        let upstream =
            Upstream::new("http://127.0.0.1:9/token".parse().unwrap()).max_concurrent_calls(1);
        let mut first = upstream.clone();
        let mut second = upstream;
        // The first call holds the one place until its future is done or dropped.
        let held = first.call(refresh());
        let shed = second.call(refresh()).await.unwrap();
        assert_eq!(shed.status(), StatusCode::SERVICE_UNAVAILABLE);
        let refused = held.await.unwrap();
        assert_eq!(refused.status(), StatusCode::BAD_GATEWAY);
        let again = second.call(refresh()).await.unwrap();
        assert_eq!(again.status(), StatusCode::BAD_GATEWAY);
    }
}

//! Fetching the signing certificate chain: the trait the verifier calls, and its default, the
//! `client` feature's hyper-rustls client.

use std::error::Error as StdError;
use std::fmt;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::body::{CollectError, Collector, FullBody};

/// The future a [`CertificateFetcher`] returns: the PEM bytes at the URL, or why not.
pub type FetchFuture<'a> = Pin<Box<dyn Future<Output = Result<Bytes, FetchError>> + Send + 'a>>;

/// Fetches the PEM certificate chain at a `SignatureCertChainUrl` that passed Amazon's URL rules.
///
/// The verifier calls it only on a cache miss, with the normalized URL
/// (`https://s3.amazonaws.com/echo.api/…`). [`HttpCertificateFetcher`] is the default; tests
/// inject their own to serve a test PKI's chain: [`FixedChainFetcher`] answers every URL with one
/// chain, or write one:
///
/// ```
/// use account_link_bridge::skill::verify::{CertificateFetcher, FetchError, FetchFuture};
///
/// /// Serves `https://s3.amazonaws.com/echo.api/<file>` from a local mirror directory.
/// struct Mirror(std::path::PathBuf);
///
/// impl CertificateFetcher for Mirror {
///     fn fetch<'a>(&'a self, url: &'a http::Uri) -> FetchFuture<'a> {
///         Box::pin(async move {
///             let file = url.path().rsplit('/').next().unwrap_or_default();
///             std::fs::read(self.0.join(file))
///                 .map(bytes::Bytes::from)
///                 .map_err(|e| FetchError::Refused(e.to_string()))
///         })
///     }
/// }
/// ```
pub trait CertificateFetcher: Send + Sync + 'static {
    /// The PEM bytes at `url`.
    fn fetch<'a>(&'a self, url: &'a Uri) -> FetchFuture<'a>;
}

/// A [`CertificateFetcher`] that answers every URL with one PEM chain: a test PKI's, in tests
/// and local runs. The URL rules are still checked before it is asked, and the chain is still
/// validated against the verifier's roots.
#[derive(Clone, Debug)]
pub struct FixedChainFetcher {
    pem: Bytes,
}

impl FixedChainFetcher {
    /// A fetcher answering `pem` (the signing certificate first, then its intermediates).
    pub fn new(pem: impl Into<Bytes>) -> Self {
        FixedChainFetcher { pem: pem.into() }
    }
}

impl CertificateFetcher for FixedChainFetcher {
    fn fetch<'a>(&'a self, _url: &'a Uri) -> FetchFuture<'a> {
        let pem = self.pem.clone();
        Box::pin(async move { Ok(pem) })
    }
}

/// Why the certificate chain could not be fetched. Either way the request is refused (it
/// cannot be verified); the kind decides how the refusal is logged.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum FetchError {
    /// A fault of the path: the host unreachable, no answer in time, or a 5xx. Logged at WARN.
    Unavailable(String),
    /// The host answered, but not with a chain: a 4xx (such as a URL under `/echo.api/` that
    /// does not exist), or more bytes than the bound. Logged at INFO, as any refusal.
    Refused(String),
}

impl fmt::Display for FetchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FetchError::Unavailable(why) | FetchError::Refused(why) => f.write_str(why),
        }
    }
}

impl StdError for FetchError {}

/// The default [`CertificateFetcher`]: a hyper-util client with rustls (webpki roots by
/// default), a timeout on the whole fetch and a bound on the chain's size.
#[derive(Clone)]
pub struct HttpCertificateFetcher {
    client: Client<HttpsConnector<HttpConnector>, FullBody>,
    timeout: Duration,
    max_bytes: usize,
}

impl HttpCertificateFetcher {
    /// The default timeout on one fetch (connect, send, read the chain): 3 s, well inside the
    /// 8 s Alexa waits for a skill's answer.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(3);
    /// The default bound on the chain's size: 64 KiB (Amazon's chain is a few KiB).
    pub const DEFAULT_MAX_BYTES: usize = 64 * 1024;

    /// A fetcher trusting the webpki roots for the TLS connection to `s3.amazonaws.com`.
    pub fn new() -> Self {
        Self::with_tls(crate::upstream::default_tls_config())
    }

    /// A fetcher that connects with this rustls configuration.
    ///
    /// It speaks plain `http` too, for a test that serves a chain on loopback; the verifier
    /// only ever hands it `https` URLs.
    pub fn with_tls(tls: rustls::ClientConfig) -> Self {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        HttpCertificateFetcher {
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Self::DEFAULT_TIMEOUT,
            max_bytes: Self::DEFAULT_MAX_BYTES,
        }
    }

    /// Sets the timeout on one fetch.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the bound on the chain's size, in bytes.
    pub fn max_bytes(mut self, max_bytes: usize) -> Self {
        self.max_bytes = max_bytes;
        self
    }

    async fn get(&self, url: &Uri) -> Result<Bytes, FetchError> {
        let request = Request::get(url.clone())
            .body(FullBody::default())
            .map_err(|e| FetchError::Refused(e.to_string()))?;
        let response = self
            .client
            .request(request)
            .await
            .map_err(|e| FetchError::Unavailable(format!("the request failed: {e}")))?;
        let status = response.status();
        if status.is_server_error() {
            return Err(FetchError::Unavailable(format!(
                "the host answered {status}"
            )));
        }
        if !status.is_success() {
            return Err(FetchError::Refused(format!("the host answered {status}")));
        }
        let mut body = response.into_body();
        let mut collector = Collector::new(self.max_bytes);
        poll_fn(|cx| collector.poll_collect(Pin::new(&mut body), cx))
            .await
            .map_err(|e| match e {
                CollectError::TooLarge => {
                    FetchError::Refused(format!("the chain is over {} bytes", self.max_bytes))
                }
                CollectError::Body(e) => {
                    FetchError::Unavailable(format!("the answer broke off: {e}"))
                }
            })
    }
}

impl Default for HttpCertificateFetcher {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for HttpCertificateFetcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpCertificateFetcher")
            .field("timeout", &self.timeout)
            .field("max_bytes", &self.max_bytes)
            .finish()
    }
}

impl CertificateFetcher for HttpCertificateFetcher {
    fn fetch<'a>(&'a self, url: &'a Uri) -> FetchFuture<'a> {
        Box::pin(async move {
            tokio::time::timeout(self.timeout, self.get(url))
                .await
                .unwrap_or_else(|_| {
                    Err(FetchError::Unavailable(format!(
                        "no answer within {} ms",
                        self.timeout.as_millis()
                    )))
                })
        })
    }
}

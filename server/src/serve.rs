//! Serving a Tower service over HTTP/1.1 and HTTP/2, optionally TLS, with graceful shutdown,
//! and with bounds on what one client can hold ([`ClientLimits`]):
//!
//! - open connections are capped; past the cap a new connection is closed as soon as it is
//!   accepted (counted in `account_link_bridge_connections_shed_total`, logged at most once a
//!   second);
//! - from accept to the first request's headers (TLS handshake and HTTP/2 preface included) a
//!   client has the header-read timeout, then the connection is closed; each later HTTP/1.1
//!   request head has the same timeout (hyper's);
//! - a connection with no request in flight for the idle timeout is closed (HTTP/1.1 keep-alive
//!   and HTTP/2 alike); HTTP/2 connections are pinged and closed when the pings go unanswered;
//! - HTTP/2 allows [`MAX_CONCURRENT_STREAMS`] streams at once, and a connection carries a
//!   bounded number of requests before it is closed gracefully (the client reconnects);
//! - a request body has the body-read timeout from the moment its headers arrived: past it
//!   the body reads as an error, which the token route answers 400 JSON (`invalid_request`);
//! - an HTTP/1.1 body the service did not read (a 413, an unknown route) is read and discarded
//!   for up to [`LINGER_TIME`] and [`LINGER_BYTES`] before the connection closes (RFC 9112
//!   §9.6), so that a client that writes its whole body before it reads (Python's
//!   `http.client`, many SDKs) reads the answer instead of a connection reset.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use account_link_bridge::throttle::LogThrottle;
use bytes::Bytes;
use http::{Request, Response, Version};
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use pin_project_lite::pin_project;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{watch, Notify, Semaphore};
use tokio::time::{Instant, Sleep};
use tokio_rustls::TlsAcceptor;
use tower::util::Oneshot;
use tower::{Service, ServiceExt};

/// How long in-flight exchanges get to finish after a shutdown signal.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// HTTP/2 streams one connection may have open at once (hyper's default is 200).
pub const MAX_CONCURRENT_STREAMS: u32 = 16;
/// How long an unread HTTP/1.1 request body is still read and discarded after the answer.
pub const LINGER_TIME: Duration = Duration::from_secs(1);
/// How much of an unread HTTP/1.1 request body is read and discarded after the answer: more
/// than a client writing a few MiB before reading needs, bounded all the same.
pub const LINGER_BYTES: usize = 8 << 20;
/// HTTP/2 PING interval, and how long an unanswered PING waits before the connection is closed.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// What one client may hold, and for how long.
#[derive(Clone, Copy, Debug)]
pub struct ClientLimits {
    /// From accept to the first request's headers, and for each later HTTP/1.1 request head.
    pub header_read_timeout: Duration,
    /// From a request's headers to the end of its body.
    pub body_read_timeout: Duration,
    /// With no request in flight, after the first one.
    pub idle_timeout: Duration,
    /// Open connections at most.
    pub max_connections: usize,
    /// Requests one connection may carry; then it is closed gracefully.
    pub max_requests_per_connection: usize,
}

impl Default for ClientLimits {
    /// The command line's defaults.
    fn default() -> Self {
        ClientLimits {
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(5),
            idle_timeout: Duration::from_secs(60),
            max_connections: 1024,
            max_requests_per_connection: 10_000,
        }
    }
}

/// Loads a PEM certificate chain and private key into a TLS acceptor (HTTP/2 and HTTP/1.1 by
/// ALPN).
pub fn tls_acceptor(cert: &Path, key: &Path) -> Result<TlsAcceptor, String> {
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("cannot read the certificate {}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("no certificate in {}", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key)
        .map_err(|e| format!("cannot read the private key {}: {e}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| e.to_string())?
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .map_err(|e| format!("the certificate and key do not fit: {e}"))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `service` on `listener` within `limits` until `shutdown` resolves, then stops
/// accepting and gives in-flight connections [`SHUTDOWN_GRACE`] to finish.
pub async fn serve<S, B>(
    listener: TcpListener,
    service: S,
    tls: Option<TlsAcceptor>,
    limits: ClientLimits,
    shutdown: impl Future<Output = ()>,
) where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    let builder = Arc::new(builder);
    let slots = Arc::new(Semaphore::new(
        limits.max_connections.min(Semaphore::MAX_PERMITS),
    ));
    let shed_log = LogThrottle::new();
    // Every connection task holds a receiver: `closed()` on the sender is "all connections
    // are done", and `send(true)` asks them to finish gracefully.
    let (stop, stopping) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    // Out of file descriptors and the like: wait instead of spinning.
                    tracing::warn!(%error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
            drop(stream);
            ::metrics::counter!("account_link_bridge_connections_shed_total").increment(1);
            if let Some(suppressed) = shed_log.due() {
                tracing::warn!(
                    max_connections = limits.max_connections,
                    shed_since_last_line = suppressed,
                    "too many open connections: closed a new one at accept (this line is written at most once a second)"
                );
            }
            continue;
        };
        let _ = stream.set_nodelay(true);
        let accepted = Instant::now();
        let service = service.clone();
        let builder = Arc::clone(&builder);
        let stopping = stopping.clone();
        let tls = tls.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let first_head_by = accepted + limits.header_read_timeout;
            match tls {
                None => {
                    serve_connection(stream, service, &builder, limits, first_head_by, stopping)
                        .await
                }
                Some(tls) => {
                    let Ok(Ok(stream)) =
                        tokio::time::timeout_at(first_head_by, tls.accept(stream)).await
                    else {
                        return;
                    };
                    serve_connection(stream, service, &builder, limits, first_head_by, stopping)
                        .await;
                }
            }
        });
    }
    drop(listener);
    drop(stopping);
    tracing::info!("shutting down: no new connections; finishing in-flight exchanges");
    let _ = stop.send(true);
    tokio::select! {
        () = stop.closed() => tracing::info!("all connections closed"),
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("some connections did not finish within {SHUTDOWN_GRACE:?}");
        }
    }
}

/// Serves one connection until it ends, is idle too long, has carried its requests, or the
/// server shuts down.
async fn serve_connection<IO, S, B>(
    io: IO,
    service: S,
    builder: &auto::Builder<TokioExecutor>,
    limits: ClientLimits,
    first_head_by: Instant,
    mut stopping: watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let activity = Arc::new(Activity::new(limits.max_requests_per_connection));
    let service = ConnectionService {
        inner: service,
        activity: Arc::clone(&activity),
        body_read_timeout: limits.body_read_timeout,
    };
    let connection = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(connection);
    let mut closing = false;
    loop {
        // Before the first request: until its headers are due. After: until the connection
        // has been idle for the idle timeout (looked at again when that time comes).
        let wake = match activity.idle_since() {
            None if activity.requests() == 0 => Some(first_head_by),
            None => None,
            Some(since) => Some(since + limits.idle_timeout),
        };
        tokio::select! {
            _ = connection.as_mut() => return,
            () = activity.request_limit_reached.notified(), if !closing => {
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            changed = stopping.changed(), if !closing => {
                let _ = changed;
                connection.as_mut().graceful_shutdown();
                closing = true;
            }
            () = sleep_until_or_forever(wake) => {
                let idle = match activity.idle_since() {
                    None => activity.requests() == 0,
                    Some(since) => since + limits.idle_timeout <= Instant::now(),
                };
                if idle {
                    // Nothing in flight: dropping the connection closes the socket.
                    return;
                }
            }
            () = activity.changed.notified() => {}
        }
    }
}

async fn sleep_until_or_forever(deadline: Option<Instant>) {
    match deadline {
        Some(deadline) => tokio::time::sleep_until(deadline).await,
        None => std::future::pending().await,
    }
}

/// Requests in flight on one connection, and since when it has had none.
struct Activity {
    in_flight: AtomicUsize,
    requests: AtomicUsize,
    /// Milliseconds after `epoch` when the last request in flight finished.
    idle_since_ms: AtomicU64,
    epoch: Instant,
    max_requests: usize,
    /// Woken when a request starts or finishes, so the idle deadline is looked at again.
    changed: Notify,
    request_limit_reached: Notify,
}

impl Activity {
    fn new(max_requests: usize) -> Self {
        Activity {
            in_flight: AtomicUsize::new(0),
            requests: AtomicUsize::new(0),
            idle_since_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            max_requests,
            changed: Notify::new(),
            request_limit_reached: Notify::new(),
        }
    }

    fn requests(&self) -> usize {
        self.requests.load(Ordering::Acquire)
    }

    /// When the connection became idle after a request; `None` while a request is in flight
    /// or before the first one.
    fn idle_since(&self) -> Option<Instant> {
        if self.in_flight.load(Ordering::Acquire) > 0 || self.requests() == 0 {
            return None;
        }
        let ms = self.idle_since_ms.load(Ordering::Acquire);
        Some(self.epoch + Duration::from_millis(ms))
    }

    /// Counts a request in; `true` when it is the connection's last allowed one.
    fn started(&self) -> bool {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        let n = self.requests.fetch_add(1, Ordering::AcqRel) + 1;
        if n == self.max_requests {
            self.request_limit_reached.notify_one();
        }
        self.changed.notify_one();
        n >= self.max_requests
    }

    fn finished(&self) {
        let ms = self.epoch.elapsed().as_millis() as u64;
        self.idle_since_ms.store(ms, Ordering::Release);
        self.in_flight.fetch_sub(1, Ordering::AcqRel);
        self.changed.notify_one();
    }
}

/// The service hyper calls for one connection: wraps each body in [`RequestBody`] and counts
/// the requests in flight.
#[derive(Clone)]
struct ConnectionService<S> {
    inner: S,
    activity: Arc<Activity>,
    body_read_timeout: Duration,
}

impl<S, B> hyper::service::Service<Request<Incoming>> for ConnectionService<S>
where
    S: Service<Request<RequestBody>, Response = Response<B>, Error = Infallible> + Clone,
{
    type Response = Response<B>;
    type Error = Infallible;
    type Future = InFlight<Oneshot<S, Request<RequestBody>>>;

    fn call(&self, request: Request<Incoming>) -> Self::Future {
        // HTTP/2 ends an unread stream with RST_STREAM, which the client reads as such; only
        // HTTP/1.1 must read the rest of the body for the answer to be read.
        let linger = request.version() <= Version::HTTP_11;
        let deadline = Instant::now() + self.body_read_timeout;
        let request = request.map(|body| RequestBody::new(body, deadline, linger));
        // The last allowed HTTP/1.1 request's answer says `Connection: close` itself: an
        // answer made at once (a replayed record) can be written before the connection task
        // has begun its graceful shutdown.
        let last = self.activity.started() && linger;
        InFlight {
            future: self.inner.clone().oneshot(request),
            last,
            _guard: InFlightGuard(Arc::clone(&self.activity)),
        }
    }
}

pin_project! {
    /// A request's future, counted in flight until it completes or is dropped.
    struct InFlight<F> {
        #[pin]
        future: F,
        last: bool,
        _guard: InFlightGuard,
    }
}

impl<F, B> Future for InFlight<F>
where
    F: Future<Output = Result<Response<B>, Infallible>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let mut response = std::task::ready!(this.future.poll(cx))?;
        if *this.last {
            response.headers_mut().insert(
                http::header::CONNECTION,
                http::HeaderValue::from_static("close"),
            );
        }
        Poll::Ready(Ok(response))
    }
}

struct InFlightGuard(Arc<Activity>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.finished();
    }
}

/// A request body with a deadline, read and discarded after the answer when left unread
/// (HTTP/1.1): see the [module docs](self).
pub struct RequestBody {
    inner: Option<Incoming>,
    deadline: Instant,
    // Made only when the body is not all there at the first read: most bodies never need it.
    timer: Option<Pin<Box<Sleep>>>,
    linger: bool,
}

impl RequestBody {
    fn new(inner: Incoming, deadline: Instant, linger: bool) -> Self {
        RequestBody {
            inner: Some(inner),
            deadline,
            timer: None,
            linger,
        }
    }
}

/// Why a request body could not be read.
#[derive(Debug)]
pub enum RequestBodyError {
    /// The connection failed or the client broke the body off.
    Connection(hyper::Error),
    /// The body did not arrive within the body-read timeout.
    TimedOut,
}

impl fmt::Display for RequestBodyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestBodyError::Connection(error) => write!(f, "reading the body failed: {error}"),
            RequestBodyError::TimedOut => f.write_str("the body did not arrive in time"),
        }
    }
}

impl StdError for RequestBodyError {}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let this = self.get_mut();
        let Some(body) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Poll::Ready(frame) = Pin::new(body).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(RequestBodyError::Connection)));
        }
        let deadline = this.deadline;
        let timer = this
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        ready!(timer.as_mut().poll(cx));
        // Too slow: stop reading it (a slow client gets no lingering either).
        this.inner = None;
        this.linger = false;
        Poll::Ready(Some(Err(RequestBodyError::TimedOut)))
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let Some(body) = self.inner.take() else {
            return;
        };
        if !self.linger || body.is_end_stream() {
            return;
        }
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(discard(body));
        }
    }
}

/// Reads and discards what is left of a body, within [`LINGER_TIME`] and [`LINGER_BYTES`]:
/// hyper keeps the connection reading meanwhile, so the answer already written reaches a
/// client that is still sending, instead of a reset.
async fn discard(mut body: Incoming) {
    let drain = async {
        let mut read = 0;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, Bytes::len);
            if read > LINGER_BYTES {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER_TIME, drain).await;
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}

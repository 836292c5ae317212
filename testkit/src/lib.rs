//! Shared test support for the library and the server: fake upstreams per provider
//! ([`FakeUpstream`]), servers on loopback, a test PKI and a plain client.

pub mod oidc;
pub mod upstream;

pub use upstream::{
    Answer, FakeUpstream, FakeUpstreamBuilder, Fault, Refusal, Seen, EXPIRED_CODE, SLACK_BOT_TOKEN,
};

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;

/// The old name of [`FakeUpstream`], kept while `server/tests/it/diagnostics.rs` still uses it.
#[doc(hidden)]
pub type MockUpstream = FakeUpstream;

/// Serves a hyper service function on a free loopback port.
pub async fn serve<F, Fut, B>(handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    serve_on(listener, handler);
    addr
}

/// Serves a hyper service function on `listener`, in the background.
pub fn serve_on<F, Fut, B>(listener: TcpListener, handler: F)
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(serve_connection(stream, handler.clone()));
        }
    });
}

/// Serves one connection (plain TCP or TLS) with a hyper service function, HTTP/1.1 or 2.
async fn serve_connection<IO, F, Fut, B>(io: IO, handler: F)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = hyper::service::service_fn(move |request| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(request).await) }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// Serves a Tower service (the server's `Bridge`, a layered upstream...) on a free loopback port;
/// returns its base URL.
pub async fn serve_service<S, B>(service: S) -> String
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    serve_service_on(listener, service);
    base
}

/// Serves a Tower service on `listener`, in the background.
pub fn serve_service_on<S, B>(listener: TcpListener, service: S)
where
    S: tower::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + Sync + 'static,
    S::Future: Send,
    S::Error: std::fmt::Debug,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: std::fmt::Debug,
{
    serve_on(listener, move |request| {
        let mut service = service.clone();
        async move {
            let response = tower::Service::call(&mut service, request).await.unwrap();
            let (parts, body) = response.into_parts();
            Response::from_parts(parts, Full::new(body.collect().await.unwrap().to_bytes()))
        }
    });
}

/// Serves an axum router on a free loopback port.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A reply as a test reads it.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// Asserts an RFC 6749 error answer and returns its code.
    pub fn oauth_error(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/json;charset=UTF-8")
        );
        assert_eq!(self.header("cache-control"), Some("no-store"));
        let json = self.json();
        json["error"]
            .as_str()
            .unwrap_or_else(|| panic!("no error field: {json}"))
            .to_string()
    }
}

/// Sends one request over loopback with hyper-util's client.
pub async fn send(request: Request<Full<Bytes>>) -> Reply {
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let response = client.request(request).await.expect("the server answered");
    let (parts, body) = response.into_parts();
    let body = body.collect().await.unwrap().to_bytes();
    Reply {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

/// POSTs `body` to `url` with the given headers.
pub async fn post(url: &str, headers: &[(&str, &str)], body: impl Into<Bytes>) -> Reply {
    let mut builder = Request::post(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    send(builder.body(Full::new(body.into())).unwrap()).await
}

pub fn basic(id: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

/// `sealed` with one base64url character in the middle changed. The middle, not the last
/// character: a changed last character can leave non-zero padding bits, which the decoder
/// refuses as malformed before the AEAD ever sees a tampered ciphertext.
pub fn tamper(sealed: &str) -> String {
    let mut bytes = sealed.as_bytes().to_vec();
    let middle = bytes.len() / 2;
    bytes[middle] = if bytes[middle] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}

/// A test certificate authority and a `localhost` leaf it signed.
pub struct TestPki {
    pub ca_pem: String,
    pub leaf_pem: String,
    pub leaf_key_pem: String,
    ca_der: rustls::pki_types::CertificateDer<'static>,
}

impl Default for TestPki {
    fn default() -> Self {
        Self::new()
    }
}

impl TestPki {
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &ca, &ca_key)
            .unwrap();
        TestPki {
            ca_pem: ca.pem(),
            leaf_pem: leaf.pem(),
            leaf_key_pem: leaf_key.serialize_pem(),
            ca_der: ca.der().clone(),
        }
    }

    /// Roots trusting only this CA.
    pub fn roots(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca_der.clone()).unwrap();
        roots
    }

    /// A rustls server configuration presenting the leaf (h2 and http/1.1 by ALPN).
    pub fn server_config(&self) -> rustls::ServerConfig {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = vec![CertificateDer::from_pem_slice(self.leaf_pem.as_bytes()).unwrap()];
        let key = PrivateKeyDer::from_pem_slice(self.leaf_key_pem.as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        config
    }

    /// Writes the leaf and its key as PEM files in a fresh temporary folder.
    pub fn write_leaf(&self) -> (std::path::PathBuf, std::path::PathBuf) {
        static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "alb-tls-{}-{}",
            std::process::id(),
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let cert = dir.join("cert.pem");
        let key = dir.join("key.pem");
        std::fs::write(&cert, &self.leaf_pem).unwrap();
        std::fs::write(&key, &self.leaf_key_pem).unwrap();
        (cert, key)
    }
}

/// The answer `FakeUpstream::salesforce()` gives a code exchange, as Alexa must read it through the
/// Salesforce preset: `expires_in` injected, `instance_url` packed, the refresh token kept.
pub fn assert_salesforce_token(answer: &serde_json::Value) {
    assert_eq!(answer["token_type"], "Bearer");
    assert_eq!(answer["expires_in"], 5400);
    assert_eq!(
        answer["refresh_token"],
        "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrbU1Q"
    );
    let token =
        account_link_bridge::PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(
        token.access_token(),
        "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9"
    );
    assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));
}

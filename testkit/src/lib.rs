//! Shared test support for the library and the server: fake upstreams per provider
//! ([`FakeUpstream`]), servers on loopback, a test PKI and a plain client.

pub mod net;
pub mod oidc;
pub mod process;
pub mod redis;
pub mod upstream;

pub use net::ClosedPort;
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

/// The parameters of a test certificate authority named `common_name`.
fn ca_params(common_name: &str, constraints: rcgen::BasicConstraints) -> rcgen::CertificateParams {
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = rcgen::IsCa::Ca(constraints);
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, common_name);
    params
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
        use rcgen::{BasicConstraints, CertificateParams, KeyPair};
        let ca_key = KeyPair::generate().unwrap();
        let ca = ca_params("Test CA", BasicConstraints::Unconstrained)
            .self_signed(&ca_key)
            .unwrap();
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

/// A PKI shaped like the one Alexa signs skill requests with: a root, an intermediate, and
/// signing certificates for `echo-api.amazon.com` with an RSA key (Alexa's `Signature-256` is
/// RSA PKCS#1 v1.5 with SHA-256).
pub struct AlexaSigningPki {
    /// The root, to trust (`AlexaRequestVerifier::root_certificates_pem`).
    pub root_pem: String,
    intermediate: rcgen::Certificate,
    intermediate_key: rcgen::KeyPair,
}

/// The signing key of every `AlexaSigningPki` signing certificate. A fixed test key, trusted by
/// nothing outside these tests: ring, rcgen's backend here, cannot generate RSA keys.
const ALEXA_SIGNING_TEST_KEY_PEM: &str = "\
-----BEGIN PRIVATE KEY-----\n\
MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQCM7ZeUm5Xc+3VQ\n\
2C0wPKFK5Lv9vIy16uX1zbs2UQtN4KHovVLS6VviK/8XpiU4ktrblFrQdILEuUyL\n\
D2fkvKzKdGmVTKwo9v/4Qvw96RyWAoDIv1rkJ8bbEFZsG9Xm0Xsn7+KrK5mWmElu\n\
srT0Pb7sBFSr4r024IkOfRhWQ7MjX89/A+DkcMP1UM6/NVdrRbcEjZFAJiUoz5os\n\
qaxvtGqtsUA79/Eoha2ePZxr8jBkXxw4TSyLE1cjynUcmeRePe+FyHNHRGtwQGmz\n\
3lIQp1kSun0cmQ8TdVxBOcHU3qOSVwN24x3R19eQSGbPDMJiwDr1b27cSMBRVXd+\n\
2hc17tOPAgMBAAECggEADxFMFqB36nOcPHOQiUrCN/6yttNU/BJMWfaQIKOToNT2\n\
mqq7Uz+OCmWH1aB29FCHQ9jdyNHcNWpWa7vO8N7XXqIJs+PJuGuIPKP00i29V7CW\n\
0l/bOO+jzEI360EiopYdI8z7IC/+MOLBXyuOO1rqsdNYtjP85QQmwzzOwFJmsc5h\n\
A5LIkjvTmhkvgewyg9ntdnlrPBT1GdYng5sWPh7+NU1BSaGRhPn9XJwOT6p3ZBMP\n\
Q32o1+qUVDorxXKrkXHCQjYEgr6iECdAtsJFj/4EmhdoerdsdVV8zxkizR9hyF2w\n\
BVh5a5qYqsURoeREBhGwYID9Ps8BCueLao+hrym9aQKBgQDAFrR3c15DvrMSvwcR\n\
SEhKpa4uqlVn//MopqIfQIgttk4pz5kn5FL0n/nMV1ifHprs0XMNFnuBmeitBtyx\n\
bBLLCVzADxbY8MEaY7VCXqTxAGXHaNCQTXyuVllQj6bcjq07CQz8oaC9GQicjCAk\n\
1oX+xQRa4gXOVbI/sNkA3AZGPQKBgQC70T7t6qVXL/l85qdVqYgihNYwXjPHQDKU\n\
da0rciH1tmk9jm0Q2tl0nVKTZ/sKXa4ka9LXGGZuFC9PBa8h6qFhWrBb+5kQn9Gz\n\
axZOoqS+8pTq0cgo9jMOkUI2qLIZhPFp6X0s/HsxzFk9fnF+9LD1DHRd99dRoniR\n\
7rODx9zpuwKBgDpq7UlimalqppUt6V1VKT8icf2ZKc4uJeoX+zgb7Q5R4iWPEBn0\n\
s1HYESUW70m9Cgq5jA7P5pG8l+l/K8D9iB2dZEq4jA8/8MowxqA/nlP49fsWIk+w\n\
cRmoAxOgDHQJJB/PGdb+5J59rYPGjcQGRcv8aN2m3XMp1sLN6sD7KSFVAoGBAIzX\n\
P6J32B8Gecdgy9Df/ZctF9VTfu6GxKcxi3dN8gtpC4g+mqkOBA1/wCGL0uQWFfV3\n\
6baktIMNneBbOdZsNTJlKGUByel+f2lU/3heXL5X+LYSNFALN4RQB2Anps6eM86h\n\
ad3nQ5a3T6BehkuWwHAyM70Xkp7EADgm0PUcVhvrAoGAfxGrFQAtA3i6bHP+yEGg\n\
f/VJpTdjU/RC+R7zIKCQIvoLQFWzDUGDgTuXX7HTTLiDo8w1Gt6BNU6qYVeQg5+q\n\
8LSoeMFgp676W/L8Gkxxsj04BB/5/l4akixrJTTKeDFQiIM3lj6wtOu93YtQWvmf\n\
R1uZJcoJ7qy2smHwZ8p2ZAs=\n\
-----END PRIVATE KEY-----\n\
";

impl Default for AlexaSigningPki {
    fn default() -> Self {
        Self::new()
    }
}

impl AlexaSigningPki {
    /// A fresh root and intermediate (ECDSA, as quick to make as rcgen allows).
    pub fn new() -> Self {
        use rcgen::{BasicConstraints, KeyPair};
        let root_key = KeyPair::generate().unwrap();
        let root = ca_params("Test Alexa Root", BasicConstraints::Unconstrained)
            .self_signed(&root_key)
            .unwrap();
        let intermediate_key = KeyPair::generate().unwrap();
        let intermediate = ca_params("Test Alexa Intermediate", BasicConstraints::Constrained(0))
            .signed_by(&intermediate_key, &root, &root_key)
            .unwrap();
        AlexaSigningPki {
            root_pem: root.pem(),
            intermediate,
            intermediate_key,
        }
    }

    /// The chain a `SignatureCertChainUrl` serves: a valid signing certificate for
    /// `echo-api.amazon.com`, then the intermediate.
    pub fn chain_pem(&self) -> String {
        self.chain_pem_with(&["echo-api.amazon.com"], false)
    }

    /// The chain with a signing certificate for these DNS names, expired (valid in 2020 only)
    /// when `expired`, then the intermediate.
    pub fn chain_pem_with(&self, names: &[&str], expired: bool) -> String {
        use rcgen::{CertificateParams, ExtendedKeyUsagePurpose, KeyPair};
        let key = KeyPair::from_pem(ALEXA_SIGNING_TEST_KEY_PEM).unwrap();
        let names = names.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let mut params = CertificateParams::new(names).unwrap();
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        if expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let signing = params
            .signed_by(&key, &self.intermediate, &self.intermediate_key)
            .unwrap();
        format!("{}{}", signing.pem(), self.intermediate.pem())
    }

    /// The `Signature-256` header for `body`: base64 of its RSA PKCS#1 v1.5 SHA-256 signature
    /// with the signing key.
    pub fn sign(body: &[u8]) -> String {
        use base64::Engine as _;
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::PrivateKeyDer;
        let key = PrivateKeyDer::from_pem_slice(ALEXA_SIGNING_TEST_KEY_PEM.as_bytes()).unwrap();
        let key = rustls::crypto::ring::sign::any_supported_type(&key).unwrap();
        let signer = key
            .choose_scheme(&[rustls::SignatureScheme::RSA_PKCS1_SHA256])
            .expect("an RSA key signs RSA_PKCS1_SHA256");
        base64::engine::general_purpose::STANDARD.encode(signer.sign(body).unwrap())
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

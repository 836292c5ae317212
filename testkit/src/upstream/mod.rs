//! One configurable fake upstream authorization server per provider, served over real loopback
//! HTTP: [`FakeUpstream::salesforce`], [`FakeUpstream::github`], [`FakeUpstream::slack`] and
//! [`FakeUpstream::generic`] each start a token endpoint (and an authorize endpoint) that answers
//! as that server does, configured by builder methods and started with `.await`:
//!
//! ```no_run
//! # async fn example() {
//! use std::time::Duration;
//! use testkit::{Fault, FakeUpstream};
//!
//! let upstream = FakeUpstream::salesforce().await;
//! let strict = FakeUpstream::generic()
//!     .client("alexa", "secret")
//!     .strict()
//!     .rotate_refresh_tokens()
//!     .await;
//! let outage = FakeUpstream::salesforce().fault(Fault::Html(503)).await;
//! let slow = FakeUpstream::slack().delay(Duration::from_secs(1)).await;
//! // ... point the bridge at `upstream.token_url()`, then assert on what it received:
//! assert!(upstream.seen().is_empty());
//! # }
//! ```
//!
//! What the shapes share is one grant (module `grant`): by default any code redeems (except
//! [`EXPIRED_CODE`]) and any refresh token refreshes, with the same tokens each time, which is all
//! most tests need; [`strict`](FakeUpstreamBuilder::strict) makes it judge as a real server does.
//! What differs is the wire (module `shape`): paths, where client credentials are read, answer
//! formats and error words. Behaviour only one test needs is a hook,
//! [`answer_with`](FakeUpstreamBuilder::answer_with), not a mode.

mod fault;
mod grant;
mod shape;

use std::convert::Infallible;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use url::Url;

pub use fault::Fault;
use grant::{Grant, Rules};
pub use shape::SLACK_BOT_TOKEN;
use shape::{Look, Shape};

/// The code every fake refuses as expired, in its provider's words (Salesforce:
/// `invalid_grant` "authorization code expired"; Slack: `invalid_code`...).
pub const EXPIRED_CODE: &str = "expired";

/// What a fake upstream saw of one request to its token endpoint.
#[derive(Clone, Debug)]
pub struct Seen {
    /// The request method.
    pub method: Method,
    /// The request path.
    pub path: String,
    /// The request headers, as received.
    pub headers: HeaderMap,
    /// The request body, as received.
    pub body: Bytes,
}

impl Seen {
    /// The body read as a form; panics when it is not one.
    pub fn form(&self) -> Vec<(String, String)> {
        serde_urlencoded::from_bytes(&self.body).expect("upstream received a valid form")
    }

    /// The form parameter `name`, if the body is a form that has it.
    pub fn param(&self, name: &str) -> Option<String> {
        serde_urlencoded::from_bytes::<Vec<(String, String)>>(&self.body)
            .ok()?
            .into_iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v)
    }

    /// The header `name`, if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(|v| v.to_str().unwrap())
    }

    /// The client id and secret of an HTTP Basic `Authorization`, decoded (no form-decoding:
    /// the upstream sees what the bridge sent).
    pub fn basic(&self) -> Option<(String, String)> {
        use base64::Engine as _;
        let encoded = self.header("authorization")?.strip_prefix("Basic ")?;
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .ok()?;
        let (id, secret) = std::str::from_utf8(&decoded).ok()?.split_once(':')?;
        Some((id.to_owned(), secret.to_owned()))
    }

    /// Whether the body was sent as `application/x-www-form-urlencoded`.
    fn is_form(&self) -> bool {
        self.header("content-type").is_some_and(|value| {
            value
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    }
}

/// A canned upstream answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    /// A JSON answer as Salesforce sends it (`application/json;charset=UTF-8`).
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Answer {
            status,
            content_type: "application/json;charset=UTF-8",
            body: body.into(),
        }
    }
}

/// Why the fake refuses an exchange; each provider words it its own way (Salesforce and a
/// generic server as RFC 6749 JSON, GitHub as HTTP 200 with `error`, Slack as `ok: false`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The code has expired ([`EXPIRED_CODE`]).
    ExpiredCode,
    /// The code was never issued.
    InvalidCode,
    /// The code was redeemed before.
    CodeUsed,
    /// The redirect_uri is not the one the code was issued for.
    RedirectMismatch,
    /// The code_verifier is missing or does not match the code's challenge.
    CodeVerifier,
    /// The refresh token is unknown, rotated out or its grant revoked.
    InvalidRefreshToken,
    /// No client credentials where the provider reads them, or another client id.
    UnknownClient,
    /// The client secret is wrong.
    WrongClientSecret,
    /// The grant type is not one the fake serves.
    UnsupportedGrantType,
    /// Too many requests.
    RateLimited,
    /// The body is not a form.
    NotAForm,
}

type Hook = Arc<dyn Fn(&Seen) -> Option<Answer> + Send + Sync>;

/// The settings of a fake upstream, before it starts. `.await` starts it.
#[must_use = "a fake upstream starts when awaited"]
pub struct FakeUpstreamBuilder {
    shape: Shape,
    look: Look,
    rules: Rules,
    client: Option<(String, String)>,
    fault: Option<Fault>,
    delay: Duration,
    hook: Option<Hook>,
    tls: Option<rustls::ServerConfig>,
}

impl std::fmt::Debug for FakeUpstreamBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUpstreamBuilder")
            .field("shape", &self.shape)
            .field("rules", &self.rules)
            .field("fault", &self.fault)
            .finish_non_exhaustive()
    }
}

impl FakeUpstreamBuilder {
    fn new(shape: Shape) -> Self {
        FakeUpstreamBuilder {
            shape,
            look: Look {
                expires_in: shape.default_expires_in(),
                ..Look::default()
            },
            rules: Rules::default(),
            client: None,
            fault: None,
            delay: Duration::ZERO,
            hook: None,
            tls: None,
        }
    }

    /// Accepts only this client, with credentials where the provider reads them (Slack: HTTP
    /// Basic; Salesforce, GitHub: the body; generic: either). Any client by default.
    pub fn client(mut self, id: impl Into<String>, secret: impl Into<String>) -> Self {
        self.client = Some((id.into(), secret.into()));
        self
    }

    /// Judges as a real server does: each code redeems once (a reused one revokes the grant),
    /// only the refresh tokens it issued are honoured, and each issue has new tokens
    /// (`access_token(n)`, `refresh_token(n)`).
    pub fn strict(mut self) -> Self {
        self.rules.strict = true;
        self
    }

    /// Each refresh answers a new refresh token; under [`strict`](Self::strict) a rotated-out
    /// one coming back revokes the whole grant, as Salesforce and oidc-provider do.
    pub fn rotate_refresh_tokens(mut self) -> Self {
        self.rules.rotate = true;
        self
    }

    /// Redeems only codes its authorize endpoint issued, once, with the redirect_uri and the
    /// PKCE verifier they were issued for.
    pub fn issued_codes_only(mut self) -> Self {
        self.rules.issued_codes_only = true;
        self
    }

    /// The authorize endpoint ignores PKCE: codes redeem without a verifier.
    pub fn ignores_pkce(mut self) -> Self {
        self.rules.ignores_pkce = true;
        self
    }

    /// Issued codes are `chars` characters longer than usual (some upstreams issue 1.5 KB codes).
    pub fn code_padding(mut self, chars: usize) -> Self {
        self.rules.code_padding = chars;
        self
    }

    /// Refuses `code` with `refusal`, whatever else holds.
    pub fn refuse_code(mut self, code: impl Into<String>, refusal: Refusal) -> Self {
        self.rules.refused_codes.push((code.into(), refusal));
        self
    }

    /// Answers tokens with this `expires_in` (a number; a GitHub form carries it as text).
    /// Defaults: none for Salesforce, GitHub OAuth apps and Slack, 3600 for generic. For GitHub
    /// and Slack it also means expiring tokens: a GitHub App's `ghu_`/`ghr_` pair, Slack's
    /// token rotation.
    pub fn expires_in(mut self, secs: u64) -> Self {
        self.look.expires_in = Some(secs);
        self
    }

    /// The access token it issues (numbered under [`strict`](Self::strict)).
    pub fn access_token(mut self, token: impl Into<String>) -> Self {
        self.look.access_token = Some(token.into());
        self
    }

    /// The refresh token it issues (numbered under [`strict`](Self::strict)).
    pub fn refresh_token(mut self, token: impl Into<String>) -> Self {
        self.look.refresh_token = Some(token.into());
        self
    }

    /// Salesforce: the `instance_url` it answers (`https://na1.salesforce.com` by default).
    pub fn instance_url(mut self, url: impl Into<String>) -> Self {
        self.look.instance_url = Some(url.into());
        self
    }

    /// Salesforce: also answers `api_instance_url` (as for JWT access tokens).
    pub fn api_instance_url(mut self, url: impl Into<String>) -> Self {
        self.look.api_instance_url = Some(url.into());
        self
    }

    /// Slack: a bot install, whose bot token comes at the top level beside `authed_user`.
    pub fn bot_token(mut self) -> Self {
        self.look.bot_token = true;
        self
    }

    /// Plays `fault` instead of answering.
    pub fn fault(mut self, fault: Fault) -> Self {
        self.fault = Some(fault);
        self
    }

    /// Waits this long before answering (changeable later with [`FakeUpstream::set_delay`]).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Answers with `answer` where it returns `Some`, as the provider would otherwise: for
    /// behaviour only one test needs.
    pub fn answer_with<F>(mut self, answer: F) -> Self
    where
        F: Fn(&Seen) -> Option<Answer> + Send + Sync + 'static,
    {
        self.hook = Some(Arc::new(answer));
        self
    }

    /// Serves HTTPS with this configuration (e.g. [`TestPki::server_config`](crate::TestPki));
    /// its URLs then name `localhost`, which the test PKI's certificate is for.
    pub fn tls(mut self, config: rustls::ServerConfig) -> Self {
        self.tls = Some(config);
        self
    }

    /// Starts serving on a free loopback port.
    pub async fn start(self) -> FakeUpstream {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let base = match self.tls {
            Some(_) => format!("https://localhost:{}", addr.port()),
            None => format!("http://{addr}"),
        };
        let acceptor = self
            .tls
            .map(|config| tokio_rustls::TlsAcceptor::from(Arc::new(config)));
        let (access_base, refresh_base) = self.shape.token_bases(&self.look);
        let shared = Arc::new(Shared {
            grant: Mutex::new(Grant::new(self.rules, access_base, refresh_base)),
            shape: self.shape,
            look: self.look,
            client: self.client,
            fault: self.fault,
            hook: self.hook,
            delay: Mutex::new(self.delay),
            seen: Mutex::new(Vec::new()),
        });
        let serving = shared.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    continue;
                };
                let shared = serving.clone();
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_connection(stream, shared).await;
                            }
                        }
                        None => serve_connection(stream, shared).await,
                    }
                });
            }
        });
        FakeUpstream { addr, base, shared }
    }
}

/// Serves one connection (plain TCP or TLS), HTTP/1.1 or 2.
async fn serve_connection<IO>(io: IO, shared: Arc<Shared>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = hyper::service::service_fn(move |request| {
        let shared = shared.clone();
        async move { shared.answer(request).await }
    });
    let _ = auto::Builder::new(TokioExecutor::new())
        .serve_connection(TokioIo::new(io), service)
        .await;
}

impl IntoFuture for FakeUpstreamBuilder {
    type Output = FakeUpstream;
    type IntoFuture = Pin<Box<dyn Future<Output = FakeUpstream> + Send>>;

    fn into_future(self) -> Self::IntoFuture {
        Box::pin(self.start())
    }
}

/// A running fake upstream; see the [module docs](self).
#[derive(Clone)]
pub struct FakeUpstream {
    /// Where it listens.
    pub addr: SocketAddr,
    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` when serving TLS.
    base: String,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for FakeUpstream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeUpstream")
            .field("addr", &self.addr)
            .field("shape", &self.shared.shape)
            .finish_non_exhaustive()
    }
}

impl FakeUpstream {
    /// Salesforce: forms only, credentials in the body, no `expires_in`, `instance_url` (and
    /// `api_instance_url` when set), refresh answers without a refresh token unless rotating,
    /// RFC 6749 errors with 400.
    pub fn salesforce() -> FakeUpstreamBuilder {
        FakeUpstreamBuilder::new(Shape::Salesforce)
    }

    /// GitHub: a form unless `Accept: application/json`, errors with HTTP 200, no `expires_in`
    /// and no refresh token for an OAuth app (see [`FakeUpstreamBuilder::expires_in`] for a
    /// GitHub App), credentials in the body.
    pub fn github() -> FakeUpstreamBuilder {
        FakeUpstreamBuilder::new(Shape::GitHub)
    }

    /// Slack's `oauth.v2.access`: `ok: false` errors with HTTP 200, the user token nested in
    /// `authed_user`, credentials in HTTP Basic.
    pub fn slack() -> FakeUpstreamBuilder {
        FakeUpstreamBuilder::new(Shape::Slack)
    }

    /// A standard RFC 6749 server: JSON with `expires_in` 3600, credentials in Basic or body,
    /// `invalid_client` with 401.
    pub fn generic() -> FakeUpstreamBuilder {
        FakeUpstreamBuilder::new(Shape::Generic)
    }

    /// An upstream that answers every token request with `answer` (at Salesforce's paths).
    pub async fn start<F>(answer: F) -> Self
    where
        F: Fn(&Seen) -> Answer + Send + Sync + 'static,
    {
        Self::salesforce()
            .answer_with(move |seen| Some(answer(seen)))
            .await
    }

    /// The token endpoint's URL (the provider's path; any path but the authorize one answers
    /// as the token endpoint).
    pub fn token_url(&self) -> String {
        format!("{}{}", self.base, self.shared.shape.token_path())
    }

    /// The authorize endpoint's URL.
    pub fn authorize_url(&self) -> String {
        format!("{}{}", self.base, self.shared.shape.authorize_path())
    }

    /// Every request the token endpoint received, oldest first.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// The last request the token endpoint received; panics when there was none.
    pub fn last(&self) -> Seen {
        self.seen()
            .last()
            .cloned()
            .expect("the upstream saw a request")
    }

    /// How many requests the token endpoint received.
    pub fn calls(&self) -> usize {
        self.shared.seen.lock().unwrap().len()
    }

    /// The access token of the `n`-th issue (1 = the first); the same for every `n` unless
    /// strict or rotating.
    pub fn access_token(&self, n: usize) -> String {
        self.shared.grant.lock().unwrap().access_token(n)
    }

    /// The refresh token of the `n`-th issue (0 = the one live before any issue).
    pub fn refresh_token(&self, n: usize) -> String {
        self.shared.grant.lock().unwrap().refresh_token(n)
    }

    /// The refresh token the grant honours now.
    pub fn live_refresh_token(&self) -> String {
        self.shared.grant.lock().unwrap().live().to_owned()
    }

    /// Whether the grant was revoked (a reused code or rotated-out refresh token, when strict).
    pub fn revoked(&self) -> bool {
        self.shared.grant.lock().unwrap().revoked()
    }

    /// Waits `delay` before each later answer.
    pub fn set_delay(&self, delay: Duration) {
        *self.shared.delay.lock().unwrap() = delay;
    }
}

/// The body type the fake answers with.
pub(super) type FakeBody = BoxBody<Bytes, std::io::Error>;

/// The running fake's configuration and state, shared by its connections.
struct Shared {
    shape: Shape,
    look: Look,
    client: Option<(String, String)>,
    fault: Option<Fault>,
    hook: Option<Hook>,
    grant: Mutex<Grant>,
    delay: Mutex<Duration>,
    seen: Mutex<Vec<Seen>>,
}

impl Shared {
    async fn answer(
        &self,
        request: Request<Incoming>,
    ) -> Result<Response<FakeBody>, std::io::Error> {
        if request.method() == Method::GET && request.uri().path() == self.shape.authorize_path() {
            return Ok(self.authorize(request.uri().query().unwrap_or_default()));
        }
        let (parts, body) = request.into_parts();
        let body = body
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let seen = Seen {
            method: parts.method,
            path: parts.uri.path().to_owned(),
            headers: parts.headers,
            body,
        };
        self.seen.lock().unwrap().push(seen.clone());
        let delay = *self.delay.lock().unwrap();
        tokio::time::sleep(delay).await;
        if let Some(fault) = &self.fault {
            return fault::play(fault, &seen);
        }
        let answer = match self.hook.as_ref().and_then(|hook| hook(&seen)) {
            Some(answer) => answer,
            None => self.token(&seen),
        };
        Ok(Response::builder()
            .status(answer.status)
            .header("content-type", answer.content_type)
            .body(full(answer.body))
            .unwrap())
    }

    /// The token endpoint's verdict, in the provider's words.
    fn token(&self, seen: &Seen) -> Answer {
        match self.verdict(seen) {
            Ok((issue, refresh)) => self.shape.token(&self.look, &issue, refresh, seen),
            Err(refusal) => self.shape.refusal(refusal, seen),
        }
    }

    fn verdict(&self, seen: &Seen) -> Result<(grant::Issue, bool), Refusal> {
        if !seen.is_form() {
            return Err(Refusal::NotAForm);
        }
        if let Some((id, secret)) = &self.client {
            match self.shape.credentials(seen) {
                Some((given_id, _)) if given_id != *id => return Err(Refusal::UnknownClient),
                Some((_, given_secret)) if given_secret != *secret => {
                    return Err(Refusal::WrongClientSecret)
                }
                Some(_) => {}
                None => return Err(Refusal::UnknownClient),
            }
        }
        let mut grant = self.grant.lock().unwrap();
        match seen.param("grant_type").as_deref() {
            Some("authorization_code") => {
                let code = seen.param("code").ok_or(Refusal::InvalidCode)?;
                let with_refresh_token = self.shape.refresh_token_on_code(&self.look);
                grant
                    .redeem(
                        &code,
                        seen.param("redirect_uri").as_deref(),
                        seen.param("code_verifier").as_deref(),
                        with_refresh_token,
                    )
                    .map(|issue| (issue, false))
            }
            Some("refresh_token") => {
                let token = seen
                    .param("refresh_token")
                    .ok_or(Refusal::InvalidRefreshToken)?;
                grant.refresh(&token).map(|issue| (issue, true))
            }
            _ => Err(Refusal::UnsupportedGrantType),
        }
    }

    /// The authorize endpoint: back to `redirect_uri` with a new code and the state, or with
    /// `access_denied` when the scope asked is `deny` (the user said no); without a usable
    /// redirect_uri, the provider's own error page.
    fn authorize(&self, query: &str) -> Response<FakeBody> {
        let pairs: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes())
            .into_owned()
            .collect();
        let get = |name: &str| {
            pairs
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
        };
        let Some((redirect_uri, mut back)) =
            get("redirect_uri").and_then(|uri| Url::parse(&uri).ok().map(|back| (uri, back)))
        else {
            return self.shape.authorize_refusal();
        };
        let state = get("state").unwrap_or_default();
        if get("scope").as_deref() == Some("deny") {
            back.query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "end-user denied \"authorization\"")
                .append_pair("state", &state);
        } else {
            let code = self.grant.lock().unwrap().authorize(
                redirect_uri,
                get("code_challenge"),
                get("code_challenge_method"),
            );
            back.query_pairs_mut()
                .append_pair("code", &code)
                .append_pair("state", &state);
        }
        // A 302, as authorization servers answer.
        Response::builder()
            .status(302)
            .header("location", back.as_str())
            .body(full(String::new()))
            .unwrap()
    }
}

pub(super) fn full(body: impl Into<Bytes>) -> FakeBody {
    Full::new(body.into())
        .map_err(|never: Infallible| match never {})
        .boxed()
}

pub(super) fn page(status: u16, text: &str) -> Response<FakeBody> {
    Response::builder()
        .status(status)
        .header("content-type", "text/html; charset=utf-8")
        .body(full(format!("<p>{text}</p>")))
        .unwrap()
}

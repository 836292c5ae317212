//! The [`AuthorizeRedirect`] service: `/authorize` and `/callback`.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use http::header::{
    ALLOW, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use sha2::{Digest, Sha256};
use tower_service::Service;
use url::Url;

use super::code::{seal_code, AuthorizeState, SealedCode};
use super::implicit::{token_request, truncate, TokenAnswer, TokenFuture};
use super::{AuthorizeRedirectBuilder, Config, GrantMode, SealedCodeOpener};
use crate::body::FullBody;
use crate::diagnostics::{
    AuthorizeReport, AuthorizeRoute, AuthorizeVerdict, Fingerprint, StateVerdict,
};
use crate::state::{fill_random, StateSealer};
use crate::{ErrorCode, OAuthError};

/// The longest `state` accepted from Alexa, in bytes (its length limit is undocumented; the
/// sealed state must stay under the sealer's size bound).
const MAX_ALEXA_STATE: usize = 1024;

/// The longest query string read.
const MAX_QUERY: usize = 8 * 1024;

const TARGET: &str = "account_link_bridge::authorize";

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

    /// The token-endpoint hook that opens the codes this service hands out.
    pub fn code_opener(&self) -> SealedCodeOpener {
        SealedCodeOpener::new(self.config.sealer.clone())
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
            Route::Callback => callback(config, &params, &mut report).with_report(report),
        }
    }
}

enum Route {
    Authorize,
    Callback,
}

/// The query parameters, with repeated ones detectable (RFC 6749 §3.1: parameters must not be
/// included more than once).
struct Params(Vec<(String, String)>);

impl Params {
    fn parse(query: &str) -> Self {
        Params(
            form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
        )
    }

    /// The parameter's value; `Err` when it is repeated. Empty values count as absent.
    fn single(&self, name: &str) -> Result<Option<&str>, Repeated> {
        let mut values = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let first = values.next();
        if values.next().is_some() {
            return Err(Repeated);
        }
        Ok(first.map(String::as_str).filter(|v| !v.is_empty()))
    }
}

struct Repeated;

/// `GET /authorize`: check Alexa's request, seal what must come back, send the browser upstream.
fn authorize(config: &Config, params: &Params, report: &mut AuthorizeReport) -> Response<FullBody> {
    let Ok(raw_redirect) = params.single("redirect_uri") else {
        return refused(report, "redirect_uri is repeated");
    };
    let alexa_redirect = match config.redirects.check(raw_redirect.unwrap_or("")) {
        Ok(url) => url,
        Err(refusal) => return refused(report, refusal.reason()),
    };
    report.redirect(&alexa_redirect);
    let alexa_state = match params.single("state") {
        Err(Repeated) => return refused(report, "state is repeated"),
        Ok(None) => return refused(report, "state is missing"),
        Ok(Some(state)) if state.len() > MAX_ALEXA_STATE => {
            return refused(report, "state is too long")
        }
        Ok(Some(state)) => state,
    };
    let mode = config.grant_mode();
    // From here on the redirect URL is trusted: errors go back to Alexa (RFC 6749 §4.1.2.1).
    let mut fail = |code: ErrorCode, description: &'static str| {
        debug_verdict(description);
        report.verdict(AuthorizeVerdict::ErrorToAlexa, description);
        to_alexa_error(mode, &alexa_redirect, alexa_state, &code, Some(description))
    };
    let (Ok(response_type), Ok(scope), Ok(client_id), Ok(challenge), Ok(method)) = (
        params.single("response_type"),
        params.single("scope"),
        params.single("client_id"),
        params.single("code_challenge"),
        params.single("code_challenge_method"),
    ) else {
        return fail(ErrorCode::INVALID_REQUEST, "a parameter is repeated");
    };
    let expected = match mode {
        GrantMode::Code => "code",
        GrantMode::Implicit => "token",
    };
    if response_type.is_some_and(|t| t != expected) {
        return fail(
            ErrorCode::new("unsupported_response_type"),
            "the response_type is not the one this bridge serves",
        );
    }
    let Some(client_id) = config.client_id.as_deref().or(client_id) else {
        return fail(ErrorCode::INVALID_REQUEST, "client_id is missing");
    };
    let scope = config.scope.as_deref().or(scope);
    // In implicit mode Alexa never redeems a code, so its challenge could not be answered.
    let alexa_challenge = challenge.filter(|_| mode == GrantMode::Code);
    let (challenge, method, verifier) = match alexa_challenge {
        Some(challenge) => (Some(challenge.to_owned()), method, None),
        None if config.pkce => {
            let verifier = new_verifier();
            (Some(s256(&verifier)), Some("S256"), Some(verifier))
        }
        None => (None, None, None),
    };
    let pkce = match (&verifier, alexa_challenge) {
        (Some(_), _) => "bridge",
        (None, Some(_)) => "alexa",
        (None, None) => "none",
    };
    let sealed = config.sealer.seal(&AuthorizeState {
        alexa_state: alexa_state.to_owned(),
        alexa_redirect: alexa_redirect.to_string(),
        verifier,
    });
    if sealed.len() > config.sealer.max_len_value() {
        return refused(report, "state is too long");
    }
    let mut upstream = config.upstream_authorize_url.clone();
    {
        let mut query = upstream.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", client_id);
        if let Some(scope) = scope {
            query.append_pair("scope", scope);
        }
        query
            .append_pair("redirect_uri", config.callback_url.as_str())
            .append_pair("state", &sealed);
        if let Some(challenge) = &challenge {
            query.append_pair("code_challenge", challenge);
        }
        if let Some(method) = method {
            query.append_pair("code_challenge_method", method);
        }
    }
    tracing::debug!(
        target: TARGET,
        verdict = "sent to the authorization server",
        pkce,
        "authorize"
    );
    report.verdict(
        AuthorizeVerdict::SentUpstream,
        "sent to the authorization server",
    );
    redirect(&upstream)
}

/// `GET /callback`: open the state, then hand Alexa a sealed code, the token, or the error.
fn callback(config: &Config, params: &Params, report: &mut AuthorizeReport) -> ResponseFuture {
    let sealed = match params.single("state") {
        Err(Repeated) => {
            report.state = Some(StateVerdict::Missing);
            return ResponseFuture::ready(refused(report, "state is repeated"));
        }
        Ok(None) => {
            report.state = Some(StateVerdict::Missing);
            return ResponseFuture::ready(refused(report, "state is missing"));
        }
        Ok(Some(sealed)) => sealed,
    };
    let state: AuthorizeState = match config.sealer.open(sealed) {
        Ok(state) => state,
        Err(error) => {
            report.state = Some(StateVerdict::from(&error));
            return ResponseFuture::ready(refused(report, error.reason()));
        }
    };
    let Ok(alexa_redirect) = Url::parse(&state.alexa_redirect) else {
        report.state = Some(StateVerdict::Malformed);
        return ResponseFuture::ready(refused(report, "the state is malformed"));
    };
    report.state = Some(StateVerdict::Ok);
    report.redirect(&alexa_redirect);
    let mode = config.grant_mode();
    let alexa_state = state.alexa_state.as_str();
    let (Ok(error), Ok(description), Ok(code)) = (
        params.single("error"),
        params.single("error_description"),
        params.single("code"),
    ) else {
        debug_verdict("a parameter is repeated");
        report.verdict(AuthorizeVerdict::ErrorToAlexa, "a parameter is repeated");
        return ResponseFuture::ready(to_alexa_error(
            mode,
            &alexa_redirect,
            alexa_state,
            &ErrorCode::SERVER_ERROR,
            Some("the authorization server repeated a parameter"),
        ));
    };
    if let Some(error) = error {
        // Cleaned to RFC 6749's character set, then relayed (RFC 6749 §4.1.2.1).
        let relayed = OAuthError::new(ErrorCode::new(error.to_owned()), StatusCode::BAD_REQUEST);
        let relayed = match description {
            Some(description) => relayed.with_description(truncate(description).to_owned()),
            None => relayed,
        };
        debug_verdict("the authorization server refused; relayed to Alexa");
        report.upstream_error = Some(relayed.code().as_str().chars().take(40).collect());
        report.verdict(
            AuthorizeVerdict::ErrorToAlexa,
            "the authorization server refused; relayed to Alexa",
        );
        return ResponseFuture::ready(to_alexa_error(
            mode,
            &alexa_redirect,
            alexa_state,
            relayed.code(),
            relayed.description(),
        ));
    }
    let Some(code) = code else {
        debug_verdict("the authorization server sent no code");
        report.verdict(
            AuthorizeVerdict::ErrorToAlexa,
            "the authorization server sent no code",
        );
        return ResponseFuture::ready(to_alexa_error(
            mode,
            &alexa_redirect,
            alexa_state,
            &ErrorCode::SERVER_ERROR,
            Some("the authorization server sent no code"),
        ));
    };
    report.code = Some(Fingerprint::of(code));
    match &config.token_service {
        None => {
            let sealed_code = seal_code(
                &config.sealer,
                &SealedCode {
                    upstream_code: code.to_owned(),
                    callback_url: config.callback_url.to_string(),
                    alexa_redirect: state.alexa_redirect.clone(),
                    verifier: state.verifier,
                },
                config.code_lifetime,
            );
            let mut location = alexa_redirect;
            location
                .query_pairs_mut()
                .append_pair("state", alexa_state)
                .append_pair("code", &sealed_code);
            debug_verdict("code sealed and sent to Alexa");
            report.verdict(
                AuthorizeVerdict::CodeToAlexa,
                "code sealed and sent to Alexa",
            );
            ResponseFuture::ready(redirect(&location))
        }
        Some(token_service) => {
            let answer = token_service.call(token_request(
                code,
                config.callback_url.as_str(),
                config.client_id.as_deref(),
                config.client_secret.as_deref(),
                state.verifier.as_deref(),
            ));
            ResponseFuture::exchange(answer, alexa_redirect, state.alexa_state)
        }
    }
}

/// The implicit grant's redirect: the token or the error in the fragment.
fn implicit_redirect(
    answer: TokenAnswer,
    mut alexa_redirect: Url,
    alexa_state: &str,
    report: Option<&mut AuthorizeReport>,
) -> Response<FullBody> {
    let verdict = |verdict, reason| {
        if let Some(report) = report {
            report.verdict(verdict, reason);
        }
    };
    match answer {
        TokenAnswer::Token {
            access_token,
            token_type,
            expires_in,
        } => {
            let mut fragment = form_urlencoded::Serializer::new(String::new());
            fragment
                .append_pair("state", alexa_state)
                .append_pair("access_token", &access_token)
                .append_pair("token_type", &token_type);
            if let Some(expires_in) = expires_in {
                fragment.append_pair("expires_in", &expires_in.to_string());
            }
            alexa_redirect.set_fragment(Some(&fragment.finish()));
            debug_verdict("token exchanged and sent to Alexa in the fragment");
            verdict(
                AuthorizeVerdict::TokenToAlexa,
                "token exchanged and sent to Alexa in the fragment",
            );
            redirect(&alexa_redirect)
        }
        TokenAnswer::Error { code, description } => {
            debug_verdict("the token exchange was refused; relayed to Alexa");
            verdict(
                AuthorizeVerdict::ErrorToAlexa,
                "the token exchange was refused; relayed to Alexa",
            );
            to_alexa_error(
                GrantMode::Implicit,
                &alexa_redirect,
                alexa_state,
                &code,
                description.as_deref(),
            )
        }
    }
}

/// Sends an RFC 6749 §4.1.2.1 error to Alexa's (checked) redirect URL: in the query for the
/// code grant, in the fragment for the implicit grant (§4.2.2.1).
fn to_alexa_error(
    mode: GrantMode,
    alexa_redirect: &Url,
    alexa_state: &str,
    code: &ErrorCode,
    description: Option<&str>,
) -> Response<FullBody> {
    let mut location = alexa_redirect.clone();
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("error", code.as_str());
    if let Some(description) = description {
        pairs.append_pair("error_description", description);
    }
    pairs.append_pair("state", alexa_state);
    let pairs = pairs.finish();
    match mode {
        GrantMode::Code => location.set_query(Some(&pairs)),
        GrantMode::Implicit => location.set_fragment(Some(&pairs)),
    }
    redirect(&location)
}

/// A PKCE code verifier (RFC 7636 §4.1): 32 random bytes as 43 characters of base64url.
fn new_verifier() -> String {
    let mut bytes = [0; 32];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The S256 code challenge of a verifier (RFC 7636 §4.2).
fn s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

fn debug_verdict(verdict: &str) {
    tracing::debug!(target: TARGET, verdict, "authorization middleman");
}

fn redirect(location: &Url) -> Response<FullBody> {
    let mut response = Response::new(FullBody::default());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    match HeaderValue::from_str(location.as_str()) {
        Ok(location) => {
            headers.insert(LOCATION, location);
        }
        // A parsed URL is ASCII without control characters; this cannot happen.
        Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "bad redirect"),
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// A refusal without redirect: the request cannot be trusted to say where to send the user.
fn refused(report: &mut AuthorizeReport, reason: &'static str) -> Response<FullBody> {
    debug_verdict(reason);
    report.verdict(AuthorizeVerdict::Refused, reason);
    refusal(reason)
}

fn refusal(reason: &'static str) -> Response<FullBody> {
    page(StatusCode::BAD_REQUEST, "Account linking failed", reason)
}

/// A small HTML page. `reason` is always one of the fixed texts of this module, never input.
fn page(status: StatusCode, title: &'static str, reason: &'static str) -> Response<FullBody> {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{reason}.</p><p>Close this page and start again from the Alexa app.</p></body></html>\n"
    );
    let mut response = Response::new(FullBody::from(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Static text only: no script, no framing (RFC 9700 §4.16, clickjacking), no sniffing.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

/// The response future of [`AuthorizeRedirect`]: ready at once, except in implicit mode where
/// `/callback` waits for the token exchange.
pub struct ResponseFuture {
    kind: Kind,
    report: Option<AuthorizeReport>,
}

enum Kind {
    Ready(Option<Response<FullBody>>),
    Exchange {
        answer: TokenFuture,
        alexa_redirect: Option<Url>,
        alexa_state: String,
    },
}

impl ResponseFuture {
    fn ready(response: Response<FullBody>) -> Self {
        ResponseFuture {
            kind: Kind::Ready(Some(response)),
            report: None,
        }
    }

    fn with_report(mut self, report: AuthorizeReport) -> Self {
        self.report = Some(report);
        self
    }

    fn exchange(answer: TokenFuture, alexa_redirect: Url, alexa_state: String) -> Self {
        ResponseFuture {
            kind: Kind::Exchange {
                answer,
                alexa_redirect: Some(alexa_redirect),
                alexa_state,
            },
            report: None,
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<FullBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut response = match &mut this.kind {
            Kind::Ready(response) => response.take().expect("polled after completion"),
            Kind::Exchange {
                answer,
                alexa_redirect,
                alexa_state,
            } => {
                let answer = std::task::ready!(answer.as_mut().poll(cx));
                let alexa_redirect = alexa_redirect.take().expect("polled after completion");
                implicit_redirect(answer, alexa_redirect, alexa_state, this.report.as_mut())
            }
        };
        if let Some(report) = this.report.take() {
            response.extensions_mut().insert(report);
        }
        Poll::Ready(Ok(response))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::TokenRequestHook;
    use tower::ServiceExt;

    const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";

    fn service(
        configure: impl FnOnce(AuthorizeRedirectBuilder) -> AuthorizeRedirectBuilder,
    ) -> AuthorizeRedirect {
        configure(
            AuthorizeRedirect::builder()
                .upstream_authorize_url("https://login.example.com/oauth/authorize?prompt=login")
                .public_url("https://bridge.example.com")
                .sealer(StateSealer::random()),
        )
        .build()
        .unwrap()
    }

    async fn get(
        service: &AuthorizeRedirect,
        pairs: &[(&str, &str)],
        path: &str,
    ) -> Response<FullBody> {
        let query = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(pairs)
            .finish();
        let request = Request::get(format!("{path}?{query}")).body(()).unwrap();
        service.clone().oneshot(request).await.unwrap()
    }

    fn location(response: &Response<FullBody>) -> Url {
        assert_eq!(response.status(), StatusCode::FOUND);
        Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
    }

    fn query(url: &Url) -> Vec<(String, String)> {
        url.query_pairs().into_owned().collect()
    }

    #[tokio::test]
    async fn authorize_keeps_the_upstream_query_and_appends_its_parameters_in_order() {
        let s = service(|b| b.client_id("bridge-id").scope("api refresh_token"));
        let response = get(
            &s,
            &[
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("client_id", "alexa"),
                ("scope", "ignored"),
            ],
            "/authorize",
        )
        .await;
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[REFERRER_POLICY], "no-referrer");
        let url = location(&response);
        let pairs = query(&url);
        let names: Vec<_> = pairs.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(
            names,
            [
                "prompt",
                "response_type",
                "client_id",
                "scope",
                "redirect_uri",
                "state"
            ]
        );
        assert_eq!(pairs[2].1, "bridge-id");
        assert_eq!(pairs[3].1, "api refresh_token");
        assert_eq!(pairs[4].1, "https://bridge.example.com/callback");
        let state: AuthorizeState = s.sealer().open(&pairs[5].1).unwrap();
        assert_eq!(state.alexa_state, "S");
        assert_eq!(state.alexa_redirect, ALEXA);
        assert!(state.verifier.is_none());
    }

    #[tokio::test]
    async fn alexas_client_id_is_used_when_none_is_configured() {
        let s = service(|b| b);
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("client_id", "alexa"),
                ],
                "/authorize",
            )
            .await,
        );
        assert!(query(&url).contains(&("client_id".into(), "alexa".into())));
        let url =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let back: Vec<_> = query(&url);
        assert_eq!(url.host_str(), Some("layla.amazon.com"));
        assert_eq!(back[0], ("error".into(), "invalid_request".into()));
        assert_eq!(back[2], ("state".into(), "S".into()));
    }

    #[tokio::test]
    async fn a_wrong_response_type_goes_back_to_alexa_as_an_error() {
        let s = service(|b| b.client_id("id"));
        let response = get(
            &s,
            &[
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("response_type", "token"),
            ],
            "/authorize",
        )
        .await;
        let url = location(&response);
        assert_eq!(url.host_str(), Some("layla.amazon.com"));
        assert!(query(&url).contains(&("error".into(), "unsupported_response_type".into())));
    }

    #[tokio::test]
    async fn an_overlong_alexa_state_is_refused_without_redirect() {
        let s = service(|b| b.client_id("id"));
        let long = "s".repeat(MAX_ALEXA_STATE + 1);
        let response = get(
            &s,
            &[("state", &long), ("redirect_uri", ALEXA)],
            "/authorize",
        )
        .await;
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert!(response.headers().get(LOCATION).is_none());
        assert!(std::str::from_utf8(response.body().as_bytes())
            .unwrap()
            .contains("state is too long"));
        assert_eq!(response.headers()[X_FRAME_OPTIONS], "DENY");
        assert_eq!(
            response.headers()[CONTENT_SECURITY_POLICY],
            "default-src 'none'; frame-ancestors 'none'"
        );
    }

    #[tokio::test]
    async fn the_code_handed_to_alexa_opens_at_the_token_endpoint() {
        let s = service(|b| b.client_id("id").pkce(true));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let challenge = &pairs.iter().find(|(n, _)| n == "code_challenge").unwrap().1;
        let back = location(
            &get(
                &s,
                &[("code", "UP"), ("state", sealed_state)],
                "/oauth/callback",
            )
            .await,
        );
        let back = query(&back);
        assert_eq!(back[0], ("state".into(), "S".into()));
        let mut request = crate::TokenRequest::parse(
            &http::HeaderMap::new(),
            form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "authorization_code")
                .append_pair("code", &back[1].1)
                .finish()
                .as_bytes(),
        )
        .unwrap();
        s.code_opener().apply(&mut request).unwrap();
        assert_eq!(request.code(), Some("UP"));
        assert_eq!(
            request.redirect_uri(),
            Some("https://bridge.example.com/callback")
        );
        assert_eq!(&s256(request.param("code_verifier").unwrap()), challenge);
    }

    #[test]
    fn s256_matches_rfc_7636_appendix_b() {
        assert_eq!(
            s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        let verifier = new_verifier();
        assert_eq!(verifier.len(), 43);
        assert_ne!(verifier, new_verifier());
    }
}

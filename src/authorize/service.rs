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
use tower_service::Service;
use url::Url;

use super::code::{
    bridge_verifier, rederive_verifier, s256, seal_code, AuthorizeState, SealedCode,
};
use super::implicit::{token_request, truncate, TokenAnswer};
use super::single_use::Claim;
use super::{AlexaRedirects, AuthorizeRedirectBuilder, Config, GrantMode, SealedCodeOpener};
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

    /// The redirect URLs this service accepts from Alexa.
    pub fn redirects(&self) -> &AlexaRedirects {
        &self.config.redirects
    }

    /// The token-endpoint hook that opens the codes this service hands out (with
    /// [`AuthorizeRedirectBuilder::refuse_plain_codes`] applied).
    pub fn code_opener(&self) -> SealedCodeOpener {
        SealedCodeOpener::new(self.config.sealer.clone())
            .refuse_plain_codes(self.config.refuse_plain_codes)
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
    let raw_redirect = raw_redirect.unwrap_or("");
    let alexa_redirect = match config.redirects.check(raw_redirect) {
        Ok(url) => url,
        Err(refusal) => {
            report.accepted_redirects = Some(config.redirects.accepted().join(" "));
            return refused(report, refusal.reason());
        }
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
    if let Some(challenge) = alexa_challenge {
        // RFC 9700 §2.1.1: S256 only. `plain` (also the default when no method is named, RFC
        // 7636 §4.3) protects nothing once the challenge has been seen, so it is refused.
        if method != Some("S256") {
            return fail(
                ErrorCode::INVALID_REQUEST,
                "code_challenge_method must be S256",
            );
        }
        if !is_s256_challenge(challenge) {
            return fail(
                ErrorCode::INVALID_REQUEST,
                "code_challenge is not an S256 challenge",
            );
        }
    }
    let id = new_state_id();
    let (challenge, pkce_key) = match alexa_challenge {
        Some(challenge) => (Some(challenge.to_owned()), None),
        // Implicit mode always makes the bridge's pair: without it an attacker holding a
        // victim's upstream code and a state of his own could have it exchanged at /callback.
        None if config.pkce || mode == GrantMode::Implicit => {
            let (hint, verifier) = bridge_verifier(&config.sealer, &id);
            (Some(s256(&verifier)), Some(hint))
        }
        None => (None, None),
    };
    let pkce = match (pkce_key, alexa_challenge) {
        (Some(_), _) => "bridge",
        (None, Some(_)) => "alexa",
        (None, None) => "none",
    };
    let sealed = config.sealer.seal(&AuthorizeState {
        alexa_state: alexa_state.to_owned(),
        alexa_redirect: raw_redirect.to_owned(),
        id,
        pkce_key,
        alexa_challenge: alexa_challenge.map(str::to_owned),
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
        if challenge.is_some() {
            query.append_pair("code_challenge_method", "S256");
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

/// `GET /callback`: open the state, claim it (single use), then hand Alexa a sealed code, the
/// token, or the error.
fn callback(config: &Arc<Config>, params: Params, mut report: AuthorizeReport) -> ResponseFuture {
    let refuse = |mut report: AuthorizeReport, verdict, reason| {
        report.state = Some(verdict);
        ResponseFuture::ready(refused(&mut report, reason)).with_report(report)
    };
    let sealed = match params.single("state") {
        Err(Repeated) => return refuse(report, StateVerdict::Missing, "state is repeated"),
        Ok(None) => return refuse(report, StateVerdict::Missing, "state is missing"),
        Ok(Some(sealed)) => sealed,
    };
    let (state, expiry): (AuthorizeState, u64) = match config.sealer.open_with_expiry(sealed) {
        Ok(opened) => opened,
        Err(error) => return refuse(report, StateVerdict::from(&error), error.reason()),
    };
    // Checked again: the allow-list (a vendor pin, say) may have changed since /authorize.
    let Ok(alexa_redirect) = config.redirects.check(&state.alexa_redirect) else {
        report.accepted_redirects = Some(config.redirects.accepted().join(" "));
        return refuse(
            report,
            StateVerdict::Ok,
            "the state's redirect_uri is no longer allowed",
        );
    };
    report.redirect(&alexa_redirect);
    let claim = config.nonce_cache.claim(state.id.as_bytes(), expiry);
    let config = Arc::clone(config);
    // Boxed: /callback runs once per account link and waits on the nonce cache and, in
    // implicit mode, on a token exchange; one allocation is nothing next to those.
    ResponseFuture::pending(Box::pin(async move {
        let response = match claim.await {
            Ok(Claim::First) => {
                report.state = Some(StateVerdict::Ok);
                claimed(&config, &params, state, alexa_redirect, &mut report).await
            }
            Ok(Claim::Replayed) => {
                report.state = Some(StateVerdict::Replayed);
                refused(&mut report, "the state was already used")
            }
            Err(_) => {
                report.state = Some(StateVerdict::Ok);
                to_alexa_failure(
                    &config,
                    &alexa_redirect,
                    &state.alexa_state,
                    &mut report,
                    "the bridge cannot check the state now",
                )
            }
        };
        (response, report)
    }))
}

/// The part of `/callback` after the state was claimed.
async fn claimed(
    config: &Config,
    params: &Params,
    state: AuthorizeState,
    alexa_redirect: Url,
    report: &mut AuthorizeReport,
) -> Response<FullBody> {
    let mode = config.grant_mode();
    let alexa_state = state.alexa_state.as_str();
    let (Ok(error), Ok(description), Ok(code)) = (
        params.single("error"),
        params.single("error_description"),
        params.single("code"),
    ) else {
        return to_alexa_failure(
            config,
            &alexa_redirect,
            alexa_state,
            report,
            "the authorization server repeated a parameter",
        );
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
        return to_alexa_error(
            mode,
            &alexa_redirect,
            alexa_state,
            relayed.code(),
            relayed.description(),
        );
    }
    let Some(code) = code else {
        return to_alexa_failure(
            config,
            &alexa_redirect,
            alexa_state,
            report,
            "the authorization server sent no code",
        );
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
                    id: state.id.clone(),
                    pkce_key: state.pkce_key,
                    alexa_challenge: state.alexa_challenge.clone(),
                },
                config.code_lifetime,
            );
            // Alexa would get a code it could never redeem: say so now instead.
            let Some(sealed_code) = sealed_code else {
                return to_alexa_failure(
                    config,
                    &alexa_redirect,
                    alexa_state,
                    report,
                    "the authorization server's code is too long to seal",
                );
            };
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
            redirect(&location)
        }
        Some(token_service) => {
            // Implicit mode always made the bridge's pair at /authorize.
            let verifier = state
                .pkce_key
                .and_then(|hint| rederive_verifier(&config.sealer, hint, &state.id));
            let Some(verifier) = verifier else {
                return to_alexa_failure(
                    config,
                    &alexa_redirect,
                    alexa_state,
                    report,
                    "the state was sealed with a key no longer held",
                );
            };
            let answer = token_service
                .call(token_request(
                    code,
                    config.callback_url.as_str(),
                    config.client_id.as_deref(),
                    config.client_secret.as_deref(),
                    Some(&verifier),
                ))
                .await;
            implicit_redirect(answer, alexa_redirect, alexa_state, Some(report))
        }
    }
}

/// A fault of the bridge or the upstream after the state was trusted: `server_error` to
/// Alexa's redirect URL (never `invalid_grant`).
fn to_alexa_failure(
    config: &Config,
    alexa_redirect: &Url,
    alexa_state: &str,
    report: &mut AuthorizeReport,
    reason: &'static str,
) -> Response<FullBody> {
    debug_verdict(reason);
    report.verdict(AuthorizeVerdict::ErrorToAlexa, reason);
    to_alexa_error(
        config.grant_mode(),
        alexa_redirect,
        alexa_state,
        &ErrorCode::SERVER_ERROR,
        Some(reason),
    )
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

/// A state's random id: 16 random bytes as 22 characters of base64url.
fn new_state_id() -> String {
    let mut bytes = [0; 16];
    fill_random(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Whether `challenge` can be an S256 challenge: the base64url of 32 bytes, 43 characters.
fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43
        && challenge
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
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

/// The response future of [`AuthorizeRedirect`]: ready at once for `/authorize`; `/callback`
/// waits for the nonce cache and, in implicit mode, for the token exchange.
pub struct ResponseFuture {
    kind: Kind,
    report: Option<AuthorizeReport>,
}

type Pending = Pin<Box<dyn Future<Output = (Response<FullBody>, AuthorizeReport)> + Send>>;

enum Kind {
    Ready(Option<Response<FullBody>>),
    Pending(Pending),
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

    fn pending(future: Pending) -> Self {
        ResponseFuture {
            kind: Kind::Pending(future),
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
        let (mut response, report) = match &mut this.kind {
            Kind::Ready(response) => (
                response.take().expect("polled after completion"),
                this.report.take(),
            ),
            Kind::Pending(future) => {
                let (response, report) = std::task::ready!(future.as_mut().poll(cx));
                (response, Some(report))
            }
        };
        if let Some(report) = report {
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
        assert!(state.pkce_key.is_none());
        assert!(state.alexa_challenge.is_none());
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
                .append_pair("redirect_uri", ALEXA)
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

    #[tokio::test]
    async fn a_plain_or_unnamed_challenge_method_goes_back_to_alexa_as_invalid_request() {
        let s = service(|b| b.client_id("id"));
        let challenge = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        for method in [Some("plain"), None, Some("s256"), Some("S512")] {
            let mut pairs = vec![
                ("state", "S"),
                ("redirect_uri", ALEXA),
                ("code_challenge", challenge.as_str()),
            ];
            if let Some(method) = method {
                pairs.push(("code_challenge_method", method));
            }
            let url = location(&get(&s, &pairs, "/authorize").await);
            assert_eq!(url.host_str(), Some("layla.amazon.com"), "{method:?}");
            let back = query(&url);
            assert_eq!(back[0], ("error".into(), "invalid_request".into()));
            assert!(back[1].1.contains("S256"), "{method:?}");
        }
        // A challenge that cannot be an S256 one.
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("code_challenge", "short"),
                    ("code_challenge_method", "S256"),
                ],
                "/authorize",
            )
            .await,
        );
        assert_eq!(query(&url)[0].1, "invalid_request");
    }

    #[tokio::test]
    async fn alexas_challenge_is_sealed_and_passed_upstream() {
        let s = service(|b| b.client_id("id").pkce(true));
        let challenge = s256("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
        let url = location(
            &get(
                &s,
                &[
                    ("state", "S"),
                    ("redirect_uri", ALEXA),
                    ("code_challenge", challenge.as_str()),
                    ("code_challenge_method", "S256"),
                ],
                "/authorize",
            )
            .await,
        );
        let pairs = query(&url);
        let find = |name: &str| pairs.iter().find(|(n, _)| n == name).unwrap().1.clone();
        assert_eq!(find("code_challenge"), challenge);
        assert_eq!(find("code_challenge_method"), "S256");
        let state: AuthorizeState = s.sealer().open(&find("state")).unwrap();
        assert_eq!(state.alexa_challenge.as_deref(), Some(challenge.as_str()));
        // Alexa's pair replaces the bridge's.
        assert!(state.pkce_key.is_none());
    }

    #[tokio::test]
    async fn a_state_is_accepted_once_at_the_callback() {
        let s = service(|b| b.client_id("id"));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let first = get(&s, &[("code", "UP"), ("state", sealed_state)], "/callback").await;
        assert_eq!(location(&first).host_str(), Some("layla.amazon.com"));
        let again = get(&s, &[("code", "UP"), ("state", sealed_state)], "/callback").await;
        assert_eq!(again.status(), StatusCode::BAD_REQUEST);
        assert!(again.headers().get(LOCATION).is_none());
        let report = again.extensions().get::<AuthorizeReport>().unwrap();
        assert_eq!(report.state, Some(StateVerdict::Replayed));
    }

    #[tokio::test]
    async fn an_upstream_code_too_long_to_seal_is_a_server_error_to_alexa() {
        let s = service(|b| b.client_id("id"));
        let upstream =
            location(&get(&s, &[("state", "S"), ("redirect_uri", ALEXA)], "/authorize").await);
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        let long = "c".repeat(3500);
        let back =
            location(&get(&s, &[("code", &long), ("state", sealed_state)], "/callback").await);
        let back = query(&back);
        assert_eq!(back[0], ("error".into(), "server_error".into()));
        assert!(!back.iter().any(|(n, _)| n == "code"));
    }

    #[tokio::test]
    async fn a_state_whose_redirect_is_no_longer_allowed_is_refused_at_the_callback() {
        let sealer = StateSealer::random();
        let before = service(|b| b.sealer(sealer.clone()));
        let upstream = location(
            &get(
                &before,
                &[("state", "S"), ("redirect_uri", ALEXA), ("client_id", "a")],
                "/authorize",
            )
            .await,
        );
        let pairs = query(&upstream);
        let sealed_state = &pairs.iter().find(|(n, _)| n == "state").unwrap().1;
        // The same deployment, now pinned to another skill.
        let after = service(|b| b.sealer(sealer).alexa_vendor_ids(["M2OTHERSKILL00"]));
        let answer = get(
            &after,
            &[("code", "UP"), ("state", sealed_state)],
            "/callback",
        )
        .await;
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
        assert!(answer.headers().get(LOCATION).is_none());
        let report = answer.extensions().get::<AuthorizeReport>().unwrap();
        assert!(report
            .accepted_redirects
            .as_deref()
            .unwrap()
            .contains("/api/skill/link/{M2OTHERSKILL00}"));
    }
}

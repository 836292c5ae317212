//! The authorization middleman: `/authorize` and `/callback` between Alexa and the upstream.
//!
//! [`AuthorizeRedirect`] is a Tower service that answers two routes (any path ending in
//! `/authorize` or `/callback`; anything else is 404):
//!
//! - `GET /authorize?state=S&redirect_uri=R&client_id&response_type&scope[&code_challenge..]`:
//!   `R` must be an Alexa redirect URL ([`AlexaRedirects`]: four hosts, the vendor pin when set,
//!   normal form only); if it is not, or `S` is missing, the answer is a 400 page and **no
//!   redirect**. Otherwise `S`, `R` as sent, a random id and Alexa's S256 `code_challenge` (or,
//!   in PKCE mode, the hint of the key the bridge's own verifier is derived under) are sealed
//!   into `T` ([`StateSealer`], bound to this deployment) and the browser is sent (302) to the
//!   upstream authorization URL with `state=T` and `redirect_uri=<public URL>/callback`.
//!   `plain` challenges are refused.
//! - `GET /callback?code=C&state=T`: `T` is opened (tampered, expired, foreign, replayed or
//!   oversized: a 400 page, no redirect) and accepted once ([`NonceCache`]); `R` is checked
//!   again. An upstream `error` is relayed to `R` with Alexa's state (RFC 6749 §4.1.2.1).
//!   Otherwise the browser goes back to `R?state=S&code=K`, where `K` is a *sealed code*
//!   holding `C`, the callback URL the upstream bound `C` to, `R`, and the PKCE facts (never a
//!   verifier). In implicit mode ([`AuthorizeRedirectBuilder::implicit`]) the bridge exchanges
//!   `C` itself, always with its own PKCE verifier, and answers
//!   `R#state=S&access_token=..&token_type=Bearer&expires_in=..`.
//!
//! At the token endpoint, [`SealedCodeOpener`] (a [`TokenRequestHook`](crate::provider::TokenRequestHook))
//! opens `K` again and puts back what the upstream expects. Nothing is stored server-side, so
//! replicas sharing the state keys are interchangeable.
//!
//! Redirects carry `Cache-Control: no-store` and `Referrer-Policy: no-referrer`; error pages are
//! small `text/html` 400 answers that say what was wrong without echoing the input.
//!
//! ```
//! use account_link_bridge::authorize::AuthorizeRedirect;
//! use account_link_bridge::state::StateSealer;
//! use account_link_bridge::{FullBody, Provider};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let sealer = StateSealer::random();
//! let authorize = AuthorizeRedirect::builder()
//!     .upstream_authorize_url("https://login.salesforce.com/services/oauth2/authorize")
//!     .client_id("3MVG9-connected-app")
//!     .public_url("https://bridge.example.com")
//!     .sealer(sealer.clone())
//!     .build()
//!     .unwrap();
//! // The token endpoint opens the codes /callback hands out:
//! let provider = Provider::salesforce().token_request_hook(authorize.code_opener());
//! # let _ = provider;
//!
//! let request = http::Request::get(
//!     "/authorize?state=abc&response_type=code&redirect_uri=https%3A%2F%2Fpitangui.amazon.com%2Fapi%2Fskill%2Flink%2FM2AAAA",
//! )
//! .body(FullBody::default())
//! .unwrap();
//! let response = authorize.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 302);
//! let location = response.headers()["location"].to_str().unwrap();
//! assert!(location.starts_with("https://login.salesforce.com/services/oauth2/authorize?response_type=code&client_id=3MVG9-connected-app"));
//! assert!(location.contains("redirect_uri=https%3A%2F%2Fbridge.example.com%2Fcallback"));
//! # }
//! ```

mod callback;
mod code;
mod future;
mod implicit;
mod page;
mod redirect;
mod report;
mod service;
mod single_use;
mod start;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use tower_service::Service;
use url::{Host, Url};

pub use self::code::SealedCodeOpener;
pub use self::future::ResponseFuture;
pub use self::redirect::{
    AlexaRedirects, RedirectRefusal, ALEXA_REDIRECT_HOSTS, IMPLICIT_STATUS_PATH,
};
pub use self::report::{AuthorizeReport, AuthorizeRoute, AuthorizeVerdict, StateVerdict};
pub use self::service::AuthorizeRedirect;
pub use self::single_use::{
    Claim, ClaimError, ClaimFuture, MemoryNonceCache, NonceCache, StoreNonceCache,
};

use self::implicit::{ServiceTokenCall, TokenCall};
use crate::body::FullBody;
use crate::state::StateSealer;

/// What the bridge gives Alexa after the upstream login.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantMode {
    /// A (sealed) authorization code in the redirect's query; Alexa exchanges it at `/token`.
    Code,
    /// The bridge exchanges the upstream code itself and puts the access token in the
    /// redirect's fragment (Alexa's implicit grant, custom skills only).
    Implicit,
}

/// Why an [`AuthorizeRedirectBuilder`] could not build.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BuildError {
    /// No upstream authorization URL was set.
    MissingUpstreamAuthorizeUrl,
    /// The upstream authorization URL is not an absolute http(s) URL without fragment.
    InvalidUpstreamAuthorizeUrl,
    /// No public URL was set.
    MissingPublicUrl,
    /// The public URL is not an absolute http(s) URL without query or fragment.
    InvalidPublicUrl,
    /// An extra redirect URL is not an absolute URL without query or fragment.
    InvalidRedirectUrl,
    /// The upstream token URL is not an absolute http(s) URL.
    InvalidUpstreamTokenUrl,
    /// An extra redirect host is not a plain DNS name (no wildcard, IP address or port).
    InvalidRedirectHost,
    /// A vendor id is empty or not made of ASCII letters and digits.
    InvalidVendorId,
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BuildError::MissingUpstreamAuthorizeUrl => "no upstream authorization URL was set",
            BuildError::InvalidUpstreamAuthorizeUrl => {
                "the upstream authorization URL is not an absolute http(s) URL"
            }
            BuildError::MissingPublicUrl => "no public URL was set",
            BuildError::InvalidPublicUrl => {
                "the public URL is not an absolute http(s) URL without query or fragment"
            }
            BuildError::InvalidRedirectUrl => {
                "an extra redirect URL is not an absolute URL without query or fragment"
            }
            BuildError::InvalidUpstreamTokenUrl => {
                "the upstream token URL is not an absolute http(s) URL"
            }
            BuildError::InvalidRedirectHost => {
                "an extra redirect host is not a plain DNS name (no wildcard, address or port)"
            }
            BuildError::InvalidVendorId => {
                "a vendor id is empty or not made of ASCII letters and digits"
            }
        })
    }
}

impl std::error::Error for BuildError {}

/// The middleman's configuration, shared by clones of the service.
pub(crate) struct Config {
    pub(crate) upstream_authorize_url: Url,
    pub(crate) client_id: Option<String>,
    pub(crate) client_secret: Option<String>,
    pub(crate) scope: Option<String>,
    pub(crate) callback_url: Url,
    pub(crate) sealer: StateSealer,
    pub(crate) redirects: AlexaRedirects,
    pub(crate) pkce: bool,
    pub(crate) code_lifetime: Duration,
    pub(crate) token_service: Option<Arc<dyn TokenCall>>,
    pub(crate) nonce_cache: Arc<dyn NonceCache>,
    pub(crate) refuse_plain_codes: bool,
    pub(crate) state_key_setting: Arc<str>,
}

impl Config {
    pub(crate) fn grant_mode(&self) -> GrantMode {
        if self.token_service.is_some() {
            GrantMode::Implicit
        } else {
            GrantMode::Code
        }
    }
}

/// Builds an [`AuthorizeRedirect`]: see the [module docs](self).
#[derive(Default)]
pub struct AuthorizeRedirectBuilder {
    upstream_authorize_url: Option<String>,
    client_id: Option<String>,
    client_secret: Option<String>,
    scope: Option<String>,
    public_url: Option<String>,
    sealer: Option<StateSealer>,
    extra_redirects: Vec<String>,
    extra_hosts: Vec<String>,
    vendor_ids: Option<Vec<String>>,
    upstream_token_url: Option<String>,
    pkce: bool,
    code_lifetime: Option<Duration>,
    token_service: Option<Arc<dyn TokenCall>>,
    nonce_cache: Option<Arc<dyn NonceCache>>,
    refuse_plain_codes: bool,
    state_key_setting: Option<String>,
}

impl AuthorizeRedirectBuilder {
    /// The default lifetime of a sealed code: 5 minutes (Alexa exchanges it within seconds).
    pub const DEFAULT_CODE_LIFETIME: Duration = Duration::from_secs(300);

    /// The upstream's authorization endpoint, e.g.
    /// `https://login.salesforce.com/services/oauth2/authorize`. Required.
    pub fn upstream_authorize_url(mut self, url: impl Into<String>) -> Self {
        self.upstream_authorize_url = Some(url.into());
        self
    }

    /// The bridge's client id at the upstream. When unset, Alexa's `client_id` is passed on.
    pub fn client_id(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }

    /// The bridge's client secret at the upstream, used only in implicit mode, where the bridge
    /// exchanges the code itself. `Debug` never shows it.
    pub fn client_secret(mut self, client_secret: impl Into<String>) -> Self {
        self.client_secret = Some(client_secret.into());
        self
    }

    /// The scope asked of the upstream, replacing the one Alexa sends.
    pub fn scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// The bridge's external base URL; the upstream sends users back to `<url>/callback`.
    /// Required.
    pub fn public_url(mut self, url: impl Into<String>) -> Self {
        self.public_url = Some(url.into());
        self
    }

    /// The sealer for states and codes. Replicas must share its keys. Default: a random key for
    /// this process, with a warning.
    pub fn sealer(mut self, sealer: StateSealer) -> Self {
        self.sealer = Some(sealer);
        self
    }

    /// Also allows redirecting to exactly this URL (compared after parsing), besides Alexa's.
    pub fn allow_redirect_url(mut self, url: impl Into<String>) -> Self {
        self.extra_redirects.push(url.into());
        self
    }

    /// Also treats this host as one of Alexa's redirect hosts (e.g. `skills-store.amazon.com`):
    /// exact, no wildcard; see [`AlexaRedirects::allow_host`].
    pub fn allow_redirect_host(mut self, host: impl Into<String>) -> Self {
        self.extra_hosts.push(host.into());
        self
    }

    /// Pins the Alexa skills served: only redirect URLs with exactly these vendor ids pass
    /// (case-sensitive). Without a pin any Alexa skill can send its users through this bridge
    /// and receive their codes (or, in implicit mode, tokens); see
    /// [`AlexaRedirects::vendor_ids`].
    pub fn alexa_vendor_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.vendor_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// The upstream's token endpoint. Together with the public URL it names the deployment
    /// every state and code is sealed for, so a bridge of another deployment sharing the key
    /// cannot open them. Recommended; without it only the public URL is bound.
    pub fn upstream_token_url(mut self, url: impl Into<String>) -> Self {
        self.upstream_token_url = Some(url.into());
        self
    }

    /// PKCE mode: when Alexa sends no `code_challenge`, the bridge makes its own S256 pair
    /// toward the upstream. The verifier is derived from the state key and a random id the
    /// state and code carry, so it never travels in them. Implicit mode always does this.
    /// [`ProviderSettings::pkce`](crate::provider::ProviderSettings::pkce) says whether a preset wants it.
    pub fn pkce(mut self, on: bool) -> Self {
        self.pkce = on;
        self
    }

    /// Where used states are recorded so each is accepted once at `/callback`. Default: a
    /// [`MemoryNonceCache`] of this process.
    pub fn nonce_cache(mut self, cache: impl NonceCache) -> Self {
        self.nonce_cache = Some(Arc::new(cache));
        self
    }

    /// Refuses codes the bridge did not seal at the token endpoint; see
    /// [`SealedCodeOpener::refuse_plain_codes`]. Off by default.
    pub fn refuse_plain_codes(mut self, on: bool) -> Self {
        self.refuse_plain_codes = on;
        self
    }

    /// How operators set the state key in this deployment (an option, a variable, a secret's
    /// name), named in the INFO line of a state or code sealed with another key, whose likely
    /// cause is replicas that do not share it or a restart without it. Default: "the state
    /// key"; the `bridge` server names its `--state-key (BRIDGE_STATE_KEY)`.
    pub fn state_key_setting(mut self, setting: impl Into<String>) -> Self {
        self.state_key_setting = Some(setting.into());
        self
    }

    /// How long a sealed code handed to Alexa stays valid (default 5 minutes).
    pub fn code_lifetime(mut self, lifetime: Duration) -> Self {
        self.code_lifetime = Some(lifetime);
        self
    }

    /// Implicit mode: `/callback` exchanges the upstream code through `token_service` and
    /// gives Alexa the token in the redirect's fragment.
    ///
    /// `token_service` receives a form POST (`grant_type=authorization_code`, `code`,
    /// `redirect_uri`, `client_id`, `client_secret`, `code_verifier` as available) and should
    /// answer RFC 6749 JSON: typically
    /// `TokenExchangeLayer::new(provider).layer(Upstream::new(token_url))`, whose answer already
    /// carries an integer `expires_in` and the packed access token.
    pub fn implicit<S, B>(mut self, token_service: S) -> Self
    where
        S: Service<Request<FullBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Send + 'static,
        B: http_body::Body<Data = Bytes> + Send + 'static,
        B::Error: Send + 'static,
    {
        self.token_service = Some(Arc::new(ServiceTokenCall::new(token_service)));
        self
    }

    /// Builds the service.
    pub fn build(self) -> Result<AuthorizeRedirect, BuildError> {
        let upstream_authorize_url = self
            .upstream_authorize_url
            .ok_or(BuildError::MissingUpstreamAuthorizeUrl)?;
        let upstream_authorize_url = Url::parse(&upstream_authorize_url)
            .ok()
            .filter(|u| is_http(u) && u.fragment().is_none())
            .ok_or(BuildError::InvalidUpstreamAuthorizeUrl)?;
        let public_url = self.public_url.ok_or(BuildError::MissingPublicUrl)?;
        let mut callback_url = Url::parse(&public_url)
            .ok()
            .filter(|u| is_http(u) && u.query().is_none() && u.fragment().is_none())
            .ok_or(BuildError::InvalidPublicUrl)?;
        let path = format!("{}/callback", callback_url.path().trim_end_matches('/'));
        callback_url.set_path(&path);
        let upstream_token_url = match &self.upstream_token_url {
            None => None,
            Some(url) => Some(
                Url::parse(url)
                    .ok()
                    .filter(is_http)
                    .ok_or(BuildError::InvalidUpstreamTokenUrl)?,
            ),
        };
        let mut redirects =
            AlexaRedirects::new().implicit_status_page(self.token_service.is_some());
        for host in &self.extra_hosts {
            let plain = !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
                && matches!(Host::parse(host), Ok(Host::Domain(_)));
            if !plain {
                return Err(BuildError::InvalidRedirectHost);
            }
            redirects = redirects.allow_host(host.clone());
        }
        if let Some(ids) = &self.vendor_ids {
            if ids.is_empty()
                || ids
                    .iter()
                    .any(|id| id.is_empty() || !id.bytes().all(|b| b.is_ascii_alphanumeric()))
            {
                return Err(BuildError::InvalidVendorId);
            }
            redirects = redirects.vendor_ids(ids.iter().cloned());
        }
        for extra in &self.extra_redirects {
            let url = Url::parse(extra)
                .ok()
                .filter(|u| u.query().is_none() && u.fragment().is_none())
                .ok_or(BuildError::InvalidRedirectUrl)?;
            redirects = redirects.allow(url);
        }
        let sealer = self.sealer.unwrap_or_else(|| {
            tracing::warn!(
                target: "account_link_bridge::authorize",
                "no state key given: using a random one; links in progress fail after a restart \
                 and on other replicas"
            );
            StateSealer::random()
        });
        // States and codes of this deployment open only here (and on its replicas).
        let deployment = format!(
            "{callback_url}\n{}",
            upstream_token_url.as_ref().map_or("", Url::as_str)
        );
        let sealer = sealer.bind_to_deployment(deployment);
        Ok(AuthorizeRedirect::from_config(Config {
            upstream_authorize_url,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scope: self.scope,
            callback_url,
            sealer,
            redirects,
            pkce: self.pkce,
            code_lifetime: self.code_lifetime.unwrap_or(Self::DEFAULT_CODE_LIFETIME),
            token_service: self.token_service,
            nonce_cache: self
                .nonce_cache
                .unwrap_or_else(|| Arc::new(MemoryNonceCache::default())),
            refuse_plain_codes: self.refuse_plain_codes,
            state_key_setting: self
                .state_key_setting
                .as_deref()
                .unwrap_or(report::DEFAULT_STATE_KEY_SETTING)
                .into(),
        }))
    }
}

fn is_http(url: &Url) -> bool {
    matches!(url.scheme(), "http" | "https") && url.has_host()
}

impl fmt::Debug for AuthorizeRedirectBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeRedirectBuilder")
            .field("upstream_authorize_url", &self.upstream_authorize_url)
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("public_url", &self.public_url)
            .field("sealer", &self.sealer)
            .field("extra_redirects", &self.extra_redirects)
            .field("extra_hosts", &self.extra_hosts)
            .field("vendor_ids", &self.vendor_ids)
            .field("upstream_token_url", &self.upstream_token_url)
            .field("pkce", &self.pkce)
            .field("code_lifetime", &self.code_lifetime)
            .field("implicit", &self.token_service.is_some())
            .field("refuse_plain_codes", &self.refuse_plain_codes)
            .field("state_key_setting", &self.state_key_setting)
            .finish()
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizeRedirect")
            .field(
                "upstream_authorize_url",
                &self.upstream_authorize_url.as_str(),
            )
            .field("client_id", &self.client_id)
            .field(
                "client_secret",
                &self.client_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("scope", &self.scope)
            .field("callback_url", &self.callback_url.as_str())
            .field("sealer", &self.sealer)
            .field("redirects", &self.redirects)
            .field("pkce", &self.pkce)
            .field("code_lifetime", &self.code_lifetime)
            .field("grant_mode", &self.grant_mode())
            .field("refuse_plain_codes", &self.refuse_plain_codes)
            .finish()
    }
}

#[cfg(test)]
mod testing;

#[cfg(test)]
mod tests {
    use super::*;

    fn builder() -> AuthorizeRedirectBuilder {
        AuthorizeRedirect::builder()
            .upstream_authorize_url("https://login.example.com/authorize")
            .public_url("https://bridge.example.com/alexa/")
            .sealer(StateSealer::random())
    }

    #[test]
    fn the_callback_url_is_the_public_url_plus_callback() {
        let service = builder().build().unwrap();
        assert_eq!(
            service.callback_url().as_str(),
            "https://bridge.example.com/alexa/callback"
        );
    }

    #[test]
    fn missing_or_invalid_urls_are_build_errors() {
        assert_eq!(
            AuthorizeRedirect::builder()
                .public_url("https://b.example.com")
                .build()
                .unwrap_err(),
            BuildError::MissingUpstreamAuthorizeUrl
        );
        assert_eq!(
            builder()
                .upstream_authorize_url("ftp://x/")
                .build()
                .unwrap_err(),
            BuildError::InvalidUpstreamAuthorizeUrl
        );
        assert_eq!(
            builder().public_url("/relative").build().unwrap_err(),
            BuildError::InvalidPublicUrl
        );
        assert_eq!(
            builder()
                .allow_redirect_url("https://x.example.com/?a=b")
                .build()
                .unwrap_err(),
            BuildError::InvalidRedirectUrl
        );
    }

    #[test]
    fn debug_never_shows_the_client_secret() {
        let b = builder().client_secret("hunter2-secret");
        assert!(!format!("{b:?}").contains("hunter2"));
        let service = b.build().unwrap();
        assert!(!format!("{service:?}").contains("hunter2"));
    }
}

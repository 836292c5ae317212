//! Authorization servers' quirks, as data the layers read.
//!
//! A [`Provider`] says how to talk to one kind of upstream: where it wants client credentials,
//! which grant types to let through, how long its access tokens live when it does not say,
//! which answer fields to pack into the access token, and how it signals errors. The layers never
//! test a provider's name; they read these settings.
//!
//! | preset | credentials | `expires_in` when absent | packed | notes |
//! | --- | --- | --- | --- | --- |
//! | [`Provider::salesforce`] | body | 5400 s (or the JWT's `exp`) | `instance_url`, `api_instance_url` | no `expires_in`; refresh answers carry no `refresh_token` (echoed) |
//! | [`Provider::github`] | body | 31 536 000 s (365 days) | nothing | `Accept: application/json`, form answers still read; errors arrive with HTTP 200; GitHub codes mapped to RFC 6749 |
//! | [`Provider::slack`] | HTTP Basic | 31 536 000 s (365 days) | nothing | `{"ok":false,"error":…}` with HTTP 200 is an error; the user token nested in `authed_user` is used when there is no top-level one |
//! | [`Provider::generic`] | body | 3600 s | nothing | RFC 6749 as is; string `expires_in` and a missing `token_type` are normalized |

mod by_name;
mod settings;

pub use self::by_name::UnknownProvider;
pub use self::settings::ProviderSettings;

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::ACCEPT;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

use crate::oauth::{ClientAuth, GrantType, TokenRequest};
use crate::{pack::PackFormat, ErrorCode, OAuthError};

/// The `expires_in` policy: what to answer when the upstream gives no lifetime, and an optional
/// ceiling.
///
/// Alexa refreshes by `expires_in` and does not refresh without it, and access tokens must live
/// at least 360 s; a lifetime below that is logged as a warning.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExpiresIn {
    default_secs: u64,
    max_secs: Option<u64>,
}

impl ExpiresIn {
    /// The shortest access-token lifetime Alexa accepts, in seconds.
    pub const ALEXA_MINIMUM_SECS: u64 = 360;

    /// Answer `secs` when the upstream gives no `expires_in` (or an unusable one).
    pub const fn default_secs(secs: u64) -> Self {
        ExpiresIn {
            default_secs: secs,
            max_secs: None,
        }
    }

    /// Clamp any `expires_in` to at most `secs`.
    pub const fn max_secs(mut self, secs: u64) -> Self {
        self.max_secs = Some(secs);
        self
    }

    /// The value used when the upstream gives none.
    pub const fn default_value(&self) -> u64 {
        self.default_secs
    }

    /// The ceiling, if any.
    pub const fn max_value(&self) -> Option<u64> {
        self.max_secs
    }

    /// The lifetime to answer for what the upstream said (`None` when it said nothing usable).
    pub(crate) fn resolve(&self, upstream: Option<u64>) -> u64 {
        let secs = upstream.unwrap_or(self.default_secs);
        match self.max_secs {
            Some(max) => secs.min(max),
            None => secs,
        }
    }
}

/// How an upstream's answer body is encoded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum AnswerFormat {
    /// JSON only (RFC 6749 §5.1).
    Json,
    /// `application/x-www-form-urlencoded` only.
    Form,
    /// Either, by Content-Type, sniffing a body that starts with `{` as JSON.
    #[default]
    Either,
}

/// How an upstream signals an error inside an HTTP 2xx answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ErrorMarker {
    /// The named top-level field is present and not null (GitHub's `error`).
    Field(Cow<'static, str>),
    /// The value at a JSON pointer (RFC 6901) equals this value (Slack's `/ok` = `false`).
    Equals {
        /// The JSON pointer, e.g. `/ok`.
        pointer: Cow<'static, str>,
        /// The value that marks an error.
        value: serde_json::Value,
    },
}

/// What the request layer needs from a provider.
#[derive(Clone)]
pub(crate) struct RequestPolicy {
    pub(crate) client_auth: ClientAuth,
    pub(crate) grant_types: Vec<GrantType>,
    pub(crate) body_limit: usize,
    pub(crate) extra_params: Vec<(String, String)>,
    pub(crate) extra_headers: HeaderMap,
    pub(crate) hooks: Vec<Arc<dyn TokenRequestHook>>,
}

/// A step run on every parsed token request before it is encoded for the upstream: swap a
/// sealed code for the upstream's, add a PKCE verifier, set the upstream `redirect_uri`.
///
/// An `Err` is answered to Alexa as it is, and nothing is sent upstream.
pub trait TokenRequestHook: Send + Sync + 'static {
    /// Changes the request in place, or refuses it.
    fn apply(&self, request: &mut TokenRequest) -> Result<(), OAuthError>;
}

impl<F> TokenRequestHook for F
where
    F: Fn(&mut TokenRequest) -> Result<(), OAuthError> + Send + Sync + 'static,
{
    fn apply(&self, request: &mut TokenRequest) -> Result<(), OAuthError> {
        self(request)
    }
}

/// What the response layer needs from a provider.
#[derive(Clone)]
pub(crate) struct ResponsePolicy {
    pub(crate) expires_in: ExpiresIn,
    pub(crate) pack: PackFormat,
    pub(crate) answer_format: AnswerFormat,
    pub(crate) error_markers: Vec<ErrorMarker>,
    pub(crate) error_codes: Vec<ErrorMapping>,
    pub(crate) body_limit: usize,
    pub(crate) access_token_pointer: Option<Cow<'static, str>>,
}

/// One upstream error code and what Alexa hears instead.
#[derive(Clone, Debug)]
pub(crate) struct ErrorMapping {
    pub(crate) upstream: Cow<'static, str>,
    pub(crate) code: ErrorCode,
    /// `None`: 400 for an error signalled in a 2xx, the upstream's status otherwise.
    pub(crate) status: Option<StatusCode>,
}

/// An authorization server's quirks: a preset, or a custom provider built with the setters.
///
/// ```
/// use account_link_bridge::{oauth::ClientAuth, provider::ExpiresIn, Provider};
///
/// let provider = Provider::generic()
///     .client_auth(ClientAuth::Basic)
///     .expires_in(ExpiresIn::default_secs(7200))
///     .pack_field("instance_url");
/// assert_eq!(provider.name(), "generic");
/// ```
///
/// Every quirk a preset has can be set on a custom provider. This rebuilds
/// [`Provider::github`] from [`Provider::generic`]:
///
/// ```
/// use account_link_bridge::{provider::AnswerFormat, oauth::ClientAuth, ErrorCode, provider::ErrorMarker, provider::ExpiresIn, Provider};
/// use http::{header::ACCEPT, HeaderValue};
///
/// let github = Provider::generic()
///     .named("my-github")
///     // Where the credentials go, and how the answer is encoded.
///     .client_auth(ClientAuth::Body)
///     .extra_header(ACCEPT, HeaderValue::from_static("application/json"))
///     .answer_format(AnswerFormat::Either)
///     // GitHub answers errors with HTTP 200 and an `error` field.
///     .error_marker(ErrorMarker::Field("error".into()))
///     .map_error_code("bad_verification_code", ErrorCode::INVALID_GRANT)
///     .map_error_code("bad_refresh_token", ErrorCode::INVALID_GRANT)
///     .map_error_code("redirect_uri_mismatch", ErrorCode::INVALID_GRANT)
///     .map_error_code("incorrect_client_credentials", ErrorCode::INVALID_CLIENT)
///     .map_error_code("unsupported_grant_type", ErrorCode::UNSUPPORTED_GRANT_TYPE)
///     // OAuth-app tokens carry no `expires_in`.
///     .expires_in(ExpiresIn::default_secs(Provider::NON_EXPIRING_DEFAULT_SECS));
///
/// assert_eq!(github.settings().client_auth(), Provider::github().settings().client_auth());
/// assert_eq!(github.settings().expires_in(), Provider::github().settings().expires_in());
/// ```
///
/// Other settings a custom provider may need: [`Provider::pack_field`] (fields carried in the
/// access token), [`ExpiresIn::max_secs`] (a ceiling on `expires_in`),
/// [`Provider::extra_param`] (a parameter added upstream),
/// [`ErrorMarker::Equals`] (an error recognised by a JSON pointer's value),
/// [`Provider::map_error`] (an upstream code answered with another code and status) and
/// [`Provider::access_token_pointer`] (a token nested in the answer).
#[derive(Clone)]
pub struct Provider {
    name: Cow<'static, str>,
    pkce: bool,
    pub(crate) request: Arc<RequestPolicy>,
    pub(crate) response: Arc<ResponsePolicy>,
}

impl Provider {
    /// The default limit on the body Alexa sends: 16 KiB.
    pub const DEFAULT_REQUEST_LIMIT: usize = 16 * 1024;
    /// The default limit on the upstream's answer: 64 KiB.
    pub const DEFAULT_ANSWER_LIMIT: usize = 64 * 1024;

    /// RFC 6749 as is: body credentials, `authorization_code` and `refresh_token`, a default
    /// `expires_in` of 3600 s when the upstream gives none, nothing packed; string `expires_in`
    /// and a missing `token_type` are normalized, an `error` field in a 2xx answer is an error.
    pub fn generic() -> Self {
        Provider {
            name: Cow::Borrowed("generic"),
            pkce: false,
            request: Arc::new(RequestPolicy {
                client_auth: ClientAuth::Body,
                grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
                body_limit: Self::DEFAULT_REQUEST_LIMIT,
                extra_params: Vec::new(),
                extra_headers: HeaderMap::new(),
                hooks: Vec::new(),
            }),
            response: Arc::new(ResponsePolicy {
                expires_in: ExpiresIn::default_secs(3600),
                pack: PackFormat::new(),
                answer_format: AnswerFormat::Either,
                error_markers: vec![ErrorMarker::Field(Cow::Borrowed("error"))],
                error_codes: Vec::new(),
                body_limit: Self::DEFAULT_ANSWER_LIMIT,
                access_token_pointer: None,
            }),
        }
    }

    /// The `expires_in` the GitHub and Slack presets answer when the upstream gives none: 365 days.
    ///
    /// Both issue access tokens that do not expire unless the app opted into expiring tokens
    /// (and then they send `expires_in` and a `refresh_token`, and this default is not used).
    /// A token that does not expire comes with no refresh token, so when Alexa decides by
    /// `expires_in` that it has expired it has nothing to refresh with and the user must link
    /// again: the default must outlive the token's real use. A year matches GitHub's own bound
    /// (it revokes OAuth tokens unused for a year, per its "Token expiration and revocation"
    /// docs) and fits comfortably in a 32-bit integer. A skill still learns of a revoked token
    /// from the upstream API's 401 and answers with a link-account card (see [`crate::skill`]).
    pub const NON_EXPIRING_DEFAULT_SECS: u64 = 365 * 24 * 60 * 60;

    /// GitHub OAuth apps and GitHub Apps (`https://github.com/login/oauth/access_token`).
    ///
    /// - GitHub answers a form (`access_token=…&scope=…&token_type=bearer`) unless the request
    ///   says `Accept: application/json` ("The default for GitHub is form encoded, but it can
    ///   also return JSON and XML", googleworkspace/apps-script-oauth2#6). The preset sends that
    ///   header and still reads a form answer ([`AnswerFormat::Either`]), in case something on
    ///   the path drops it.
    /// - Errors arrive with **HTTP 200**, as `{"error":"bad_verification_code",
    ///   "error_description":"The code passed is incorrect or expired.",…}` (octokit/auth-oauth-app.js#13,
    ///   thephpleague/oauth2-github#4) or the same as a form. The bridge answers them as RFC 6749
    ///   errors with 400, mapping GitHub's codes: `bad_verification_code`, `bad_refresh_token`
    ///   and `redirect_uri_mismatch` become `invalid_grant` (RFC 6749 §5.2 files a wrong code,
    ///   a dead refresh token and a mismatched redirect URI under `invalid_grant`),
    ///   `incorrect_client_credentials` becomes `invalid_client`, and `unsupported_grant_type`
    ///   stays.
    /// - OAuth apps' tokens carry no `expires_in` and no refresh token; GitHub Apps with
    ///   expiring user tokens send `expires_in`, `refresh_token` and
    ///   `refresh_token_expires_in` (@octokit/oauth-methods `exchange-web-flow-code.js`). When
    ///   there is none the bridge answers [`Provider::NON_EXPIRING_DEFAULT_SECS`].
    /// - Credentials go in the body, as GitHub documents `client_id` and `client_secret`.
    pub fn github() -> Self {
        Provider::generic()
            .named("github")
            .extra_header(ACCEPT, HeaderValue::from_static("application/json"))
            .answer_format(AnswerFormat::Either)
            .map_error_code("bad_verification_code", ErrorCode::INVALID_GRANT)
            .map_error_code("bad_refresh_token", ErrorCode::INVALID_GRANT)
            .map_error_code("redirect_uri_mismatch", ErrorCode::INVALID_GRANT)
            .map_error_code("incorrect_client_credentials", ErrorCode::INVALID_CLIENT)
            .map_error_code("unsupported_grant_type", ErrorCode::UNSUPPORTED_GRANT_TYPE)
            .expires_in(ExpiresIn::default_secs(Self::NON_EXPIRING_DEFAULT_SECS))
    }

    /// Slack (`https://slack.com/api/oauth.v2.access`).
    ///
    /// - Every Slack Web API answer "will always contain a top-level boolean property `ok`";
    ///   failures are `{"ok":false,"error":"invalid_code"}` with **HTTP 200**: errors are sent
    ///   "using an error field rather than status codes" (slackhq/slack-api-docs
    ///   `index_web.md`). The preset marks `/ok` = `false` as an error and maps Slack's codes:
    ///   `invalid_code`, `code_already_used`, `code_expired`, `bad_redirect_uri`,
    ///   `invalid_refresh_token`, `token_expired` and `token_revoked` become `invalid_grant`;
    ///   `invalid_client_id` and `bad_client_secret` become `invalid_client`;
    ///   `invalid_grant_type` becomes `unsupported_grant_type`; `ratelimited` and
    ///   `service_unavailable` become 503 `temporarily_unavailable`, and `internal_error`,
    ///   `fatal_error` and `request_timeout` 502 `server_error`, so a Slack outage never reads
    ///   as a dead grant. Slack sends no description; the answer's says which Slack code it was.
    /// - `ok:true` answers are tokens. `oauth.v2.access` puts the bot token at the top level
    ///   (`token_type: "bot"`) and the user token in `authed_user.access_token`; when there is
    ///   no top-level token, the user token is used (with its `expires_in` and
    ///   `refresh_token`) (docs.slack.dev `oauth.v2.access`, `OauthV2AccessResponse`). Change
    ///   this with [`Provider::access_token_pointer`].
    /// - `expires_in` and `refresh_token` come only with token rotation; without it tokens do
    ///   not expire and the bridge answers [`Provider::NON_EXPIRING_DEFAULT_SECS`].
    /// - Credentials go in HTTP Basic, which Slack recommends over body parameters.
    pub fn slack() -> Self {
        let unavailable = StatusCode::SERVICE_UNAVAILABLE;
        let broken = StatusCode::BAD_GATEWAY;
        Provider::generic()
            .named("slack")
            .client_auth(ClientAuth::Basic)
            .answer_format(AnswerFormat::Json)
            .error_marker(ErrorMarker::Equals {
                pointer: Cow::Borrowed("/ok"),
                value: serde_json::Value::Bool(false),
            })
            .map_error_code("invalid_code", ErrorCode::INVALID_GRANT)
            .map_error_code("code_already_used", ErrorCode::INVALID_GRANT)
            .map_error_code("code_expired", ErrorCode::INVALID_GRANT)
            .map_error_code("bad_redirect_uri", ErrorCode::INVALID_GRANT)
            .map_error_code("invalid_refresh_token", ErrorCode::INVALID_GRANT)
            .map_error_code("token_expired", ErrorCode::INVALID_GRANT)
            .map_error_code("token_revoked", ErrorCode::INVALID_GRANT)
            .map_error_code("invalid_client_id", ErrorCode::INVALID_CLIENT)
            .map_error_code("bad_client_secret", ErrorCode::INVALID_CLIENT)
            .map_error_code("invalid_grant_type", ErrorCode::UNSUPPORTED_GRANT_TYPE)
            .map_error(
                "ratelimited",
                ErrorCode::TEMPORARILY_UNAVAILABLE,
                unavailable,
            )
            .map_error(
                "service_unavailable",
                ErrorCode::TEMPORARILY_UNAVAILABLE,
                unavailable,
            )
            .map_error("internal_error", ErrorCode::SERVER_ERROR, broken)
            .map_error("fatal_error", ErrorCode::SERVER_ERROR, broken)
            .map_error("request_timeout", ErrorCode::SERVER_ERROR, broken)
            .access_token_pointer("/authed_user/access_token")
            .expires_in(ExpiresIn::default_secs(Self::NON_EXPIRING_DEFAULT_SECS))
    }

    /// Salesforce (`/services/oauth2/token`).
    ///
    /// - Credentials go in the body: Salesforce documents `client_id`/`client_secret` as form
    ///   parameters, and whether it accepts HTTP Basic is not documented.
    /// - Its answers have no `expires_in` (the lifetime is the org's session timeout, 2 hours by
    ///   default); the bridge answers 5400 s so Alexa refreshes before the session ends.
    /// - `instance_url`, the host the skill must call, is packed into the access token, and so
    ///   is `api_instance_url` when the answer has one (JWT-format access tokens carry it).
    /// - A JWT-format access token's `exp` gives `expires_in` (see
    ///   [`RewriteTokenResponseLayer`](crate::token_response::RewriteTokenResponseLayer)).
    /// - Refresh answers carry no `refresh_token` (unless rotation is on); the bridge echoes the
    ///   one Alexa sent.
    /// - Errors are RFC 6749 JSON with HTTP 400, e.g. `invalid_grant` "expired access/refresh
    ///   token"; they pass through.
    pub fn salesforce() -> Self {
        Provider::generic()
            .named("salesforce")
            .pkce(true)
            .expires_in(ExpiresIn::default_secs(5400))
            .pack(PackFormat::salesforce())
            .answer_format(AnswerFormat::Json)
    }

    /// The provider's name, for logs.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Renames the provider (a custom provider built from a preset).
    pub fn named(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.name = name.into();
        self
    }

    fn request_mut(&mut self) -> &mut RequestPolicy {
        Arc::make_mut(&mut self.request)
    }

    fn response_mut(&mut self) -> &mut ResponsePolicy {
        Arc::make_mut(&mut self.response)
    }

    /// Where the upstream wants client credentials.
    pub fn client_auth(mut self, auth: ClientAuth) -> Self {
        self.request_mut().client_auth = auth;
        self
    }

    /// The grant types let through; others get `unsupported_grant_type`.
    pub fn grant_types(mut self, grant_types: impl IntoIterator<Item = GrantType>) -> Self {
        self.request_mut().grant_types = grant_types.into_iter().collect();
        self
    }

    /// The largest body accepted from Alexa, in bytes (larger: 413).
    pub fn request_body_limit(mut self, limit: usize) -> Self {
        self.request_mut().body_limit = limit;
        self
    }

    /// A parameter added to every upstream token request (unless Alexa sent it).
    pub fn extra_param(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.request_mut()
            .extra_params
            .push((name.into(), value.into()));
        self
    }

    /// A header set on every upstream token request.
    pub fn extra_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.request_mut().extra_headers.insert(name, value);
        self
    }

    /// Adds a step run on every parsed token request before it goes upstream (after those
    /// already added).
    pub fn token_request_hook(mut self, hook: impl TokenRequestHook) -> Self {
        self.request_mut().hooks.push(Arc::new(hook));
        self
    }

    /// The `expires_in` policy.
    pub fn expires_in(mut self, expires_in: ExpiresIn) -> Self {
        if expires_in.default_secs < ExpiresIn::ALEXA_MINIMUM_SECS {
            tracing::warn!(
                default_secs = expires_in.default_secs,
                "the default expires_in is below the 360 s Alexa requires"
            );
        }
        self.response_mut().expires_in = expires_in;
        self
    }

    /// The packing of answer fields into the access token.
    pub fn pack(mut self, format: PackFormat) -> Self {
        self.response_mut().pack = format;
        self
    }

    /// Packs one more answer field into the access token (default separator: a space).
    pub fn pack_field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        let response = self.response_mut();
        response.pack = std::mem::take(&mut response.pack).field(name);
        self
    }

    /// How the upstream encodes its answers.
    pub fn answer_format(mut self, format: AnswerFormat) -> Self {
        self.response_mut().answer_format = format;
        self
    }

    /// Adds a way the upstream marks an error inside a 2xx answer.
    pub fn error_marker(mut self, marker: ErrorMarker) -> Self {
        self.response_mut().error_markers.push(marker);
        self
    }

    /// Maps an upstream error code to an RFC 6749 one (e.g. GitHub's `bad_verification_code`
    /// to `invalid_grant`). Unmapped codes pass through as they are.
    ///
    /// The status stays: 400 for an error signalled inside a 2xx answer, the upstream's own
    /// otherwise. When the upstream gave no `error_description`, the answer's names the
    /// upstream code. A later mapping of the same code replaces an earlier one.
    pub fn map_error_code(self, upstream: impl Into<Cow<'static, str>>, code: ErrorCode) -> Self {
        self.push_error_mapping(upstream.into(), code, None)
    }

    /// Maps an upstream error code to an RFC 6749 code answered with this HTTP status, e.g.
    /// Slack's `ratelimited` (sent with HTTP 200) to 503 `temporarily_unavailable`.
    pub fn map_error(
        self,
        upstream: impl Into<Cow<'static, str>>,
        code: ErrorCode,
        status: StatusCode,
    ) -> Self {
        self.push_error_mapping(upstream.into(), code, Some(status))
    }

    fn push_error_mapping(
        mut self,
        upstream: Cow<'static, str>,
        code: ErrorCode,
        status: Option<StatusCode>,
    ) -> Self {
        let codes = &mut self.response_mut().error_codes;
        codes.retain(|mapping| mapping.upstream != upstream);
        codes.push(ErrorMapping {
            upstream,
            code,
            status,
        });
        self
    }

    /// The largest upstream answer read, in bytes (larger: 502).
    pub fn answer_body_limit(mut self, limit: usize) -> Self {
        self.response_mut().body_limit = limit;
        self
    }

    /// Where to find the access token when the answer has none at the top level: a JSON
    /// pointer such as `/authed_user/access_token` (Slack's user token).
    ///
    /// The object holding that token is taken to describe it: its `expires_in` and
    /// `refresh_token` are used when the top level has none.
    pub fn access_token_pointer(mut self, pointer: impl Into<Cow<'static, str>>) -> Self {
        self.response_mut().access_token_pointer = Some(pointer.into());
        self
    }

    /// Whether the authorization middleman should make its own PKCE pair (S256) toward this
    /// upstream when Alexa sends none; see [`ProviderSettings::pkce`]. On in the Salesforce
    /// preset, off in the others.
    pub fn pkce(mut self, on: bool) -> Self {
        self.pkce = on;
        self
    }

    /// A read-only view of the settings in force, with plain getter names
    /// (`provider.settings().client_auth()`): the setters keep the builder names on
    /// [`Provider`] itself, the getters live on [`ProviderSettings`].
    pub fn settings(&self) -> ProviderSettings<'_> {
        ProviderSettings { provider: self }
    }
}

impl Default for Provider {
    fn default() -> Self {
        Provider::generic()
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let request = &*self.request;
        let response = &*self.response;
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("pkce", &self.pkce)
            .field("client_auth", &request.client_auth)
            .field("grant_types", &request.grant_types)
            .field("request_body_limit", &request.body_limit)
            .field(
                "extra_params",
                &request
                    .extra_params
                    .iter()
                    .map(|(n, _)| n)
                    .collect::<Vec<_>>(),
            )
            .field(
                "extra_headers",
                &request.extra_headers.keys().collect::<Vec<_>>(),
            )
            .field("hooks", &request.hooks.len())
            .field("expires_in", &response.expires_in)
            .field("pack", &response.pack)
            .field("answer_format", &response.answer_format)
            .field("error_markers", &response.error_markers)
            .field("error_codes", &response.error_codes)
            .field("access_token_pointer", &response.access_token_pointer)
            .field("answer_body_limit", &response.body_limit)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn salesforce_preset_packs_instance_url_and_defaults_to_5400() {
        let p = Provider::salesforce();
        assert_eq!(p.settings().expires_in().default_value(), 5400);
        assert_eq!(
            p.settings().pack().fields().collect::<Vec<_>>(),
            ["instance_url", "api_instance_url"]
        );
        assert_eq!(p.settings().client_auth(), ClientAuth::Body);
    }

    #[test]
    fn the_settings_view_reads_back_what_the_setters_set() {
        let p = Provider::generic()
            .named("custom")
            .client_auth(ClientAuth::Basic)
            .grant_types([GrantType::RefreshToken])
            .request_body_limit(1000)
            .extra_param("audience", "api")
            .extra_header(ACCEPT, HeaderValue::from_static("application/json"))
            .expires_in(ExpiresIn::default_secs(7200).max_secs(9000))
            .pack_field("instance_url")
            .answer_format(AnswerFormat::Form)
            .map_error_code("bad_code", ErrorCode::INVALID_GRANT)
            .answer_body_limit(2000)
            .access_token_pointer("/user/token")
            .pkce(true);
        let s = p.settings();
        assert_eq!(s.name(), "custom");
        assert_eq!(s.client_auth(), ClientAuth::Basic);
        assert_eq!(s.grant_types(), &[GrantType::RefreshToken]);
        assert_eq!(s.request_body_limit(), 1000);
        assert_eq!(s.extra_params().collect::<Vec<_>>(), [("audience", "api")]);
        assert_eq!(s.extra_headers()[ACCEPT], "application/json");
        assert_eq!(s.expires_in(), ExpiresIn::default_secs(7200).max_secs(9000));
        assert_eq!(s.pack().fields().collect::<Vec<_>>(), ["instance_url"]);
        assert_eq!(s.answer_format(), AnswerFormat::Form);
        assert_eq!(
            s.error_markers().collect::<Vec<_>>(),
            [&ErrorMarker::Field("error".into())]
        );
        assert_eq!(
            s.error_codes().collect::<Vec<_>>(),
            [("bad_code", &ErrorCode::INVALID_GRANT)]
        );
        assert_eq!(s.answer_body_limit(), 2000);
        assert_eq!(s.access_token_pointer(), Some("/user/token"));
        assert!(s.pkce());
        let generic = Provider::generic();
        assert_eq!(
            generic.settings().request_body_limit(),
            Provider::DEFAULT_REQUEST_LIMIT
        );
        assert_eq!(
            generic.settings().answer_body_limit(),
            Provider::DEFAULT_ANSWER_LIMIT
        );
        assert_eq!(generic.settings().access_token_pointer(), None);
    }

    #[test]
    fn only_the_salesforce_preset_wants_pkce_by_default() {
        assert!(Provider::salesforce().settings().pkce());
        for name in ["generic", "github", "slack"] {
            assert!(
                !Provider::by_name(name).unwrap().settings().pkce(),
                "{name}"
            );
        }
        assert!(Provider::github().pkce(true).settings().pkce());
        assert!(!Provider::salesforce().pkce(false).settings().pkce());
    }

    #[test]
    fn by_name_knows_every_preset_in_any_case() {
        for name in ["salesforce", "github", "slack", "generic"] {
            assert_eq!(Provider::by_name(name).unwrap().name(), name);
            assert_eq!(
                Provider::by_name(&name.to_uppercase()).unwrap().name(),
                name
            );
        }
        assert!(Provider::by_name("okta").is_none());
    }

    #[test]
    fn slack_preset_uses_basic_and_reads_the_user_token() {
        let p = Provider::slack();
        assert_eq!(p.settings().client_auth(), ClientAuth::Basic);
        assert_eq!(
            p.response.access_token_pointer.as_deref(),
            Some("/authed_user/access_token")
        );
        assert_eq!(
            p.settings().expires_in().default_value(),
            Provider::NON_EXPIRING_DEFAULT_SECS
        );
    }

    #[test]
    fn github_preset_asks_for_json_and_reads_forms() {
        let p = Provider::github();
        assert_eq!(p.request.extra_headers[ACCEPT], "application/json");
        assert_eq!(p.response.answer_format, AnswerFormat::Either);
        assert_eq!(p.settings().client_auth(), ClientAuth::Body);
    }

    #[test]
    fn a_later_mapping_of_a_code_replaces_the_earlier_one() {
        let p = Provider::generic()
            .map_error_code("x", ErrorCode::INVALID_GRANT)
            .map_error("x", ErrorCode::SERVER_ERROR, StatusCode::BAD_GATEWAY);
        assert_eq!(p.response.error_codes.len(), 1);
        assert_eq!(p.response.error_codes[0].code, ErrorCode::SERVER_ERROR);
    }

    #[test]
    fn expires_in_clamps_to_the_maximum() {
        let e = ExpiresIn::default_secs(5400).max_secs(3600);
        assert_eq!(e.resolve(None), 3600);
        assert_eq!(e.resolve(Some(100)), 100);
        assert_eq!(ExpiresIn::default_secs(5400).resolve(Some(86400)), 86400);
    }

    #[test]
    fn setters_do_not_change_shared_clones() {
        let a = Provider::generic();
        let b = a.clone().client_auth(ClientAuth::Basic);
        assert_eq!(a.settings().client_auth(), ClientAuth::Body);
        assert_eq!(b.settings().client_auth(), ClientAuth::Basic);
    }

    #[test]
    fn debug_does_not_show_extra_parameter_values() {
        let p = Provider::generic().extra_param("client_assertion", "secret-value");
        assert!(!format!("{p:?}").contains("secret-value"));
    }
}

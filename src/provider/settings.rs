//! [`ProviderSettings`]: the read-only view of a [`Provider`]'s settings.

use std::fmt;

use http::HeaderMap;

use super::{AnswerFormat, ErrorMarker, ExpiresIn, Provider};
use crate::oauth::{ClientAuth, ErrorCode, GrantType};
use crate::pack::PackFormat;

/// A read-only view of a [`Provider`]'s settings: [`Provider::settings`].
///
/// What the layers and tools such as the `bridge doctor` read instead of testing a preset's
/// name.
///
/// ```
/// use account_link_bridge::oauth::ClientAuth;
/// use account_link_bridge::Provider;
///
/// let slack = Provider::slack();
/// assert_eq!(slack.settings().client_auth(), ClientAuth::Basic);
/// assert!(slack.settings().error_markers().next().is_some());
/// assert!(Provider::salesforce().settings().pkce());
/// ```
#[derive(Clone, Copy)]
pub struct ProviderSettings<'a> {
    pub(super) provider: &'a Provider,
}

impl<'a> ProviderSettings<'a> {
    /// The provider's name, for logs.
    pub fn name(&self) -> &'a str {
        &self.provider.name
    }

    /// Whether this upstream wants PKCE from the bridge: Salesforce's External Client Apps can
    /// require it (apps that partners distribute must), and Salesforce accepts it from every
    /// client, so the Salesforce preset says yes. The `bridge` server's `--pkce`/`--no-pkce`
    /// override it; [`AuthorizeRedirectBuilder::pkce`](crate::authorize::AuthorizeRedirectBuilder::pkce)
    /// is where it takes effect.
    pub fn pkce(&self) -> bool {
        self.provider.pkce
    }

    /// Where the upstream wants client credentials.
    pub fn client_auth(&self) -> ClientAuth {
        self.provider.request.client_auth
    }

    /// The grant types let through.
    pub fn grant_types(&self) -> &'a [GrantType] {
        &self.provider.request.grant_types
    }

    /// The largest body accepted from Alexa, in bytes.
    pub fn request_body_limit(&self) -> usize {
        self.provider.request.body_limit
    }

    /// The parameters added to every upstream token request, as (name, value).
    pub fn extra_params(&self) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.provider
            .request
            .extra_params
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The headers set on every upstream token request.
    pub fn extra_headers(&self) -> &'a HeaderMap {
        &self.provider.request.extra_headers
    }

    /// The `expires_in` policy.
    pub fn expires_in(&self) -> ExpiresIn {
        self.provider.response.expires_in
    }

    /// The packing of answer fields into the access token.
    pub fn pack(&self) -> &'a PackFormat {
        &self.provider.response.pack
    }

    /// How the upstream encodes its answers.
    pub fn answer_format(&self) -> AnswerFormat {
        self.provider.response.answer_format
    }

    /// The ways the upstream marks an error inside a 2xx answer.
    pub fn error_markers(&self) -> impl Iterator<Item = &'a ErrorMarker> {
        self.provider.response.error_markers.iter()
    }

    /// The upstream error codes mapped to RFC 6749 ones, as (upstream code, answered code).
    pub fn error_codes(&self) -> impl Iterator<Item = (&'a str, &'a ErrorCode)> {
        self.provider
            .response
            .error_codes
            .iter()
            .map(|m| (m.upstream.as_ref(), &m.code))
    }

    /// The largest upstream answer read, in bytes.
    pub fn answer_body_limit(&self) -> usize {
        self.provider.response.body_limit
    }

    /// Where the access token is looked for when the answer has none at the top level.
    pub fn access_token_pointer(&self) -> Option<&'a str> {
        self.provider.response.access_token_pointer.as_deref()
    }
}

impl fmt::Debug for ProviderSettings<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.provider, f)
    }
}

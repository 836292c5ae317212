//! The grant vocabulary: grant types (RFC 6749 §4), where client credentials go (§2.3.1) and
//! where Alexa put them, and the encoding of the body it sent.

use std::borrow::Cow;
use std::fmt;

/// An OAuth 2.0 grant type (RFC 6749 §4).
#[derive(Clone, PartialEq, Eq, Hash)]
pub enum GrantType {
    /// `authorization_code`: Alexa exchanges the code from the authorization redirect.
    AuthorizationCode,
    /// `refresh_token`: Alexa renews an expired access token.
    RefreshToken,
    /// Any other grant type, by name.
    Other(Cow<'static, str>),
}

impl GrantType {
    /// Parses a `grant_type` value.
    pub fn from_name(name: &str) -> Self {
        match name {
            "authorization_code" => GrantType::AuthorizationCode,
            "refresh_token" => GrantType::RefreshToken,
            other => GrantType::Other(Cow::Owned(other.to_owned())),
        }
    }

    /// The `grant_type` value.
    pub fn as_str(&self) -> &str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::RefreshToken => "refresh_token",
            GrantType::Other(name) => name,
        }
    }
}

impl fmt::Debug for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for GrantType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the bridge puts the client credentials on the request to the upstream
/// (RFC 6749 §2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_id` and `client_secret` as form parameters (Salesforce's documented way).
    #[default]
    Body,
    /// `Authorization: Basic base64(form(client_id):form(client_secret))`.
    Basic,
}

/// Where Alexa put the client credentials (the skill's "Client Authentication Scheme").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialSource {
    /// In an HTTP Basic `Authorization` header ("HTTP Basic").
    Basic,
    /// As `client_id`/`client_secret` body parameters ("Credentials in request body").
    Body,
    /// No credentials at all.
    None,
}

/// The encoding of the body Alexa sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    /// `application/x-www-form-urlencoded`, declared or sniffed.
    Form,
    /// `application/json`, declared or sniffed.
    Json,
}

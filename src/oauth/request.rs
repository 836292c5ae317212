//! The typed token request: what Alexa sent, parameters in order, credentials apart, secrets
//! redacted from `Debug`. Parsing it is in `parse.rs`, encoding it for the upstream in `form.rs`.

use std::fmt;
use std::sync::Arc;

use super::{BodyFormat, CredentialSource, GrantType};

/// A token request as Alexa sent it, parsed strictly.
///
/// Parameters keep their order. Parameters sent with an empty value are treated as omitted
/// (RFC 6749 §3.1). Its `Debug` output shows parameter names and redacts every value that could
/// be a secret (codes, tokens, secrets, verifiers, and any parameter not known to be harmless).
///
/// ```
/// use account_link_bridge::{oauth::GrantType, TokenRequest};
/// use http::HeaderMap;
///
/// // Alexa's JSON without a Content-Type, as the Salesforce bridge's author reported it:
/// let body = br#"{"grant_type":"authorization_code","code":"abc","client_id":"alexa","client_secret":"s3cret"}"#;
/// let request = TokenRequest::parse(&HeaderMap::new(), body).unwrap();
/// assert_eq!(request.grant_type(), &GrantType::AuthorizationCode);
/// assert_eq!(request.code(), Some("abc"));
/// assert_eq!(request.client_id(), Some("alexa"));
/// assert!(!format!("{request:?}").contains("s3cret"));
/// ```
///
/// Cloning is cheap: the parsed fields are shared, and copied only when a clone is changed
/// (`set_param`, `remove_param`). The response layer keeps a clone of every request for the
/// whole exchange, so a deep copy there would cost one allocation per parameter.
#[derive(Clone)]
pub struct TokenRequest {
    pub(super) fields: Arc<Fields>,
}

/// The parsed request; built by the parser, shared between clones.
#[derive(Clone)]
pub(super) struct Fields {
    pub(super) grant_type: GrantType,
    /// Every decoded name and value, one after another: one allocation for the whole request
    /// instead of two per parameter. The spans below point into it.
    pub(super) text: String,
    pub(super) params: Vec<(Span, Span)>,
    pub(super) client_id: Option<Span>,
    pub(super) client_secret: Option<Span>,
    pub(super) credentials: CredentialSource,
    pub(super) format: BodyFormat,
}

/// Where one name or value lies in [`Fields::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Span {
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Span {
    /// Appends `value` to `text` and returns where it went.
    pub(super) fn push(text: &mut String, value: &str) -> Span {
        let start = text.len();
        text.push_str(value);
        Span {
            start,
            end: text.len(),
        }
    }

    pub(super) fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The name or value in `text`.
    pub(super) fn of(self, text: &str) -> &str {
        &text[self.start..self.end]
    }
}

impl Fields {
    fn at(&self, span: Span) -> &str {
        span.of(&self.text)
    }

    fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.params.iter().map(|&(n, v)| (self.at(n), self.at(v)))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|&(n, _)| self.at(n) == name)
    }
}

/// Parameter names whose values are never secrets, shown by `Debug`.
const HARMLESS: &[&str] = &[
    "grant_type",
    "redirect_uri",
    "scope",
    "client_id",
    "response_type",
    "code_challenge_method",
];

impl TokenRequest {
    /// The grant type.
    pub fn grant_type(&self) -> &GrantType {
        &self.fields.grant_type
    }

    /// A parameter's value, `None` when absent. Client credentials are not parameters: see
    /// [`TokenRequest::client_id`] and [`TokenRequest::client_secret`].
    pub fn param(&self, name: &str) -> Option<&str> {
        let fields = &*self.fields;
        fields.position(name).map(|i| fields.at(fields.params[i].1))
    }

    /// All parameters in the order Alexa sent them, credentials excluded.
    pub fn params(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.params()
    }

    /// The authorization code (`authorization_code` grant).
    pub fn code(&self) -> Option<&str> {
        self.param("code")
    }

    /// The refresh token (`refresh_token` grant).
    pub fn refresh_token(&self) -> Option<&str> {
        self.param("refresh_token")
    }

    /// The `redirect_uri` Alexa sent.
    pub fn redirect_uri(&self) -> Option<&str> {
        self.param("redirect_uri")
    }

    /// The client id, from Basic or the body.
    pub fn client_id(&self) -> Option<&str> {
        self.fields.client_id.map(|span| self.fields.at(span))
    }

    /// The client secret, from Basic or the body.
    pub fn client_secret(&self) -> Option<&str> {
        self.fields.client_secret.map(|span| self.fields.at(span))
    }

    /// Where Alexa put the client credentials.
    pub fn credential_source(&self) -> CredentialSource {
        self.fields.credentials
    }

    /// The encoding of the body Alexa sent.
    pub fn body_format(&self) -> BodyFormat {
        self.fields.format
    }

    /// Sets a parameter: replaces its value if present, appends it otherwise.
    pub fn set_param(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        let value = value.into();
        let position = self.fields.position(&name);
        let fields = Arc::make_mut(&mut self.fields);
        // The replaced value stays in the text, unreferenced: requests live for one exchange.
        let value = Span::push(&mut fields.text, &value);
        match position {
            Some(i) => fields.params[i].1 = value,
            None => {
                let name = Span::push(&mut fields.text, &name);
                fields.params.push((name, value));
            }
        }
    }

    /// Removes a parameter, returning its value.
    pub fn remove_param(&mut self, name: &str) -> Option<String> {
        let i = self.fields.position(name)?;
        let fields = Arc::make_mut(&mut self.fields);
        let (_, value) = fields.params.remove(i);
        Some(fields.at(value).to_owned())
    }

    /// The values a description or log line must never show: code, refresh token, client
    /// secret, code verifier.
    pub fn secrets(&self) -> impl Iterator<Item = &str> {
        self.fields
            .params()
            .filter(|(n, _)| !HARMLESS.contains(n))
            .map(|(_, v)| v)
            .chain(self.client_secret())
    }
}

impl fmt::Debug for TokenRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Params<'a>(&'a Fields);
        impl fmt::Debug for Params<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_map()
                    .entries(self.0.params().map(|(n, v)| {
                        let shown = if HARMLESS.contains(&n) {
                            v
                        } else {
                            "[redacted]"
                        };
                        (n, shown)
                    }))
                    .finish()
            }
        }
        f.debug_struct("TokenRequest")
            .field("grant_type", &self.fields.grant_type)
            .field("params", &Params(&self.fields))
            .field("client_id", &self.client_id())
            .field(
                "client_secret",
                &self.fields.client_secret.map(|_| "[redacted]"),
            )
            .field("credentials", &self.fields.credentials)
            .field("format", &self.fields.format)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::form;
    use super::*;

    #[test]
    fn debug_shows_names_but_no_secret() {
        let r = TokenRequest::parse(&form(), b"grant_type=authorization_code&code=thecode&code_verifier=V3R1F13R&client_id=alexa&client_secret=shh").unwrap();
        let debug = format!("{r:?}");
        for secret in ["thecode", "V3R1F13R", "shh"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("code_verifier") && debug.contains("alexa"));
    }
}

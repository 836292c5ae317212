//! What Alexa sent and what went upstream: the request layer's record for the observers.

use std::fmt;

use bytes::Bytes;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use crate::fingerprint::Fingerprint;
use crate::oauth::{BodyFormat, CredentialSource, ErrorCode, GrantType, TokenRequest};

/// What Alexa sent and what went upstream, as the request layer saw it.
///
/// [`NormalizeTokenRequestLayer`](super::NormalizeTokenRequestLayer) puts it in the extensions
/// of every answer it gives, refusals included, for an observer such as
/// [`DiagnosticsLayer`](crate::diagnostics::DiagnosticsLayer). It is filled cheaply on every
/// exchange (a few reference-counted handles and one string of names); the costly views
/// (the upstream parameter names, the [`Fingerprint`]s) are worked out only when an observer
/// asks for them. Its `Debug` shows no value that could be a secret.
#[derive(Clone, Default)]
#[non_exhaustive]
pub struct RequestFacts {
    /// How Alexa's body was read; `None` when it could not be parsed.
    pub body_format: Option<BodyFormat>,
    /// Where Alexa put the client credentials; `None` when the body could not be parsed.
    pub credentials: Option<CredentialSource>,
    /// The grant type Alexa asked for.
    pub grant_type: Option<GrantType>,
    /// The error the bridge answered without calling the upstream (malformed request, an
    /// unsupported grant, a sealed code that does not open).
    pub refused: Option<ErrorCode>,
    content_type: Option<HeaderValue>,
    /// Alexa's parameter names, comma-separated, each cut to 40 characters.
    alexa_params: String,
    /// The form sent upstream (a handle on the same bytes, not a copy).
    upstream_form: Option<Bytes>,
    upstream_authorization: Option<HeaderValue>,
}

/// The parameters whose values are secrets and get a fingerprint.
const SECRET_PARAMS: &[&str] = &["code", "refresh_token", "client_secret", "code_verifier"];

impl RequestFacts {
    /// The facts known before parsing: Alexa's Content-Type.
    pub(crate) fn of_headers(headers: &HeaderMap) -> Self {
        RequestFacts {
            content_type: headers.get(http::header::CONTENT_TYPE).cloned(),
            ..RequestFacts::default()
        }
    }

    /// Adds what the parsed request says (before any hook rewrote it).
    pub(crate) fn alexa_sent(&mut self, request: &TokenRequest) {
        self.body_format = Some(request.body_format());
        self.credentials = Some(request.credential_source());
        self.grant_type = Some(request.grant_type().clone());
        let mut names = String::with_capacity(64);
        let mut push = |name: &str| {
            if !names.is_empty() {
                names.push(',');
            }
            // The usual name (short, no comma) is copied whole, not char by char.
            if name.len() <= 40 && !name.contains(',') {
                names.push_str(name);
            } else {
                names.extend(name.chars().filter(|c| *c != ',').take(40));
            }
        };
        for (name, _) in request.params() {
            push(name);
        }
        if request.credential_source() == CredentialSource::Body {
            if request.client_id().is_some() {
                push("client_id");
            }
            if request.client_secret().is_some() {
                push("client_secret");
            }
        }
        self.alexa_params = names;
    }

    /// Adds what went upstream: the encoded form and the `Authorization` header.
    pub(crate) fn upstream_sent(&mut self, form: &Bytes, headers: &HeaderMap) {
        self.upstream_form = Some(form.clone());
        self.upstream_authorization = headers.get(AUTHORIZATION).cloned();
    }

    /// Alexa's `Content-Type`, the media type only (at most 64 characters).
    pub fn content_type(&self) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::CONTENT_TYPE, self.content_type.clone()?);
        crate::content_media_type(&headers).map(|v| v.chars().take(64).collect())
    }

    /// The names of Alexa's parameters, in order (credentials in the body included).
    pub fn alexa_params(&self) -> impl Iterator<Item = &str> {
        self.alexa_params.split(',').filter(|n| !n.is_empty())
    }

    /// The names of the parameters sent upstream, in order (each cut to 40 characters).
    pub fn upstream_params(&self) -> Vec<String> {
        self.upstream_form.as_deref().map_or_else(Vec::new, |form| {
            form_urlencoded::parse(form)
                .map(|(n, _)| n.chars().take(40).collect())
                .collect()
        })
    }

    /// Where the credentials went upstream; `None` when nothing went upstream.
    pub fn upstream_credentials(&self) -> Option<CredentialSource> {
        let form = self.upstream_form.as_deref()?;
        Some(if self.upstream_authorization.is_some() {
            CredentialSource::Basic
        } else if form_urlencoded::parse(form)
            .any(|(n, _)| n == "client_id" || n == "client_secret")
        {
            CredentialSource::Body
        } else {
            CredentialSource::None
        })
    }

    /// The [`Fingerprint`]s of the secrets sent upstream (`code`, `refresh_token`,
    /// `client_secret`, `code_verifier`), by parameter name; one HMAC each, so worked out only
    /// when asked.
    pub fn fingerprints(&self) -> Vec<(&'static str, Fingerprint)> {
        let Some(form) = self.upstream_form.as_deref() else {
            return Vec::new();
        };
        let basic_secret = self.upstream_authorization.clone().and_then(|value| {
            let mut headers = HeaderMap::new();
            headers.insert(AUTHORIZATION, value);
            crate::oauth::basic_credentials(&headers)
                .ok()
                .flatten()
                .map(|(_, secret)| secret)
        });
        SECRET_PARAMS
            .iter()
            .filter_map(|name| {
                let value = form_urlencoded::parse(form)
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.into_owned())
                    .or_else(|| {
                        (*name == "client_secret")
                            .then(|| basic_secret.clone())
                            .flatten()
                    })
                    .filter(|v| !v.is_empty())?;
                Some((*name, Fingerprint::of(&value)))
            })
            .collect()
    }
}

impl fmt::Debug for RequestFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestFacts")
            .field("body_format", &self.body_format)
            .field("credentials", &self.credentials)
            .field("grant_type", &self.grant_type)
            .field("refused", &self.refused)
            .field("alexa_params", &self.alexa_params)
            .field(
                "upstream_form",
                &self.upstream_form.as_ref().map(|f| f.len()),
            )
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_shows_names_and_sizes_but_no_value_sent_upstream() {
        let mut headers = HeaderMap::new();
        headers.insert(
            AUTHORIZATION,
            HeaderValue::from_static("Basic YWxleGE6czNjcjN0"),
        );
        let mut facts = RequestFacts::default();
        facts.upstream_sent(
            &Bytes::from_static(b"grant_type=refresh_token&refresh_token=Atzr-SENTINEL"),
            &headers,
        );
        let shown = format!("{facts:?}");
        assert!(!shown.contains("SENTINEL"), "{shown}");
        assert!(!shown.contains("YWxleGE6czNjcjN0"), "{shown}");
        assert_eq!(facts.upstream_params(), ["grant_type", "refresh_token"]);
        assert_eq!(facts.upstream_credentials(), Some(CredentialSource::Basic));
        let names: Vec<_> = facts.fingerprints().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["refresh_token", "client_secret"]);
        assert!(facts
            .fingerprints()
            .contains(&("client_secret", Fingerprint::of("s3cr3t"))));
    }
}

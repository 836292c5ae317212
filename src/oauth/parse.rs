//! The typed token request, parsed strictly from what Alexa may send, and encoded as a form.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use bytes::Bytes;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue};
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::OAuthError;

/// The most parameters a token request may carry. Alexa sends at most seven; the bound keeps the
/// duplicate check cheap on hostile bodies.
const MAX_PARAMS: usize = 64;

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

/// A token request as Alexa sent it, parsed strictly.
///
/// Parameters keep their order. Parameters sent with an empty value are treated as omitted
/// (RFC 6749 §3.1). Its `Debug` output shows parameter names and redacts every value that could
/// be a secret (codes, tokens, secrets, verifiers, and any parameter not known to be harmless).
///
/// ```
/// use account_link_bridge::{GrantType, TokenRequest};
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
    fields: Arc<Fields>,
}

#[derive(Clone)]
struct Fields {
    grant_type: GrantType,
    /// Every decoded name and value, one after another: one allocation for the whole request
    /// instead of two per parameter. The spans below point into it.
    text: String,
    params: Vec<(Span, Span)>,
    client_id: Option<Span>,
    client_secret: Option<Span>,
    credentials: CredentialSource,
    format: BodyFormat,
}

/// Where one name or value lies in [`Fields::text`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Span {
    start: usize,
    end: usize,
}

impl Span {
    /// Appends `value` to `text` and returns where it went.
    fn push(text: &mut String, value: &str) -> Span {
        let start = text.len();
        text.push_str(value);
        Span {
            start,
            end: text.len(),
        }
    }

    fn is_empty(self) -> bool {
        self.start == self.end
    }

    /// The name or value in `text`.
    fn of(self, text: &str) -> &str {
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
    /// Parses a token request from its headers and body, allowing the `authorization_code` and
    /// `refresh_token` grants.
    pub fn parse(headers: &HeaderMap, body: &[u8]) -> Result<TokenRequest, OAuthError> {
        Self::parse_with(
            headers,
            body,
            &[GrantType::AuthorizationCode, GrantType::RefreshToken],
        )
    }

    /// Parses a token request, allowing the given grant types.
    ///
    /// Refuses, with the RFC 6749 error Alexa should hear: media types other than form and JSON
    /// (400 `invalid_request`), invalid UTF-8 or percent-encoding, JSON values that are not
    /// strings, duplicate or control-character parameters (400 `invalid_request`), a missing
    /// `grant_type` (400 `invalid_request`) or one not allowed (400 `unsupported_grant_type`),
    /// a missing `code` or `refresh_token`, credentials both in Basic and in the body
    /// (400 `invalid_request`), and a malformed Basic header (401 `invalid_client`).
    pub fn parse_with(
        headers: &HeaderMap,
        body: &[u8],
        allowed: &[GrantType],
    ) -> Result<TokenRequest, OAuthError> {
        let format = body_format(headers, body)?;
        // Sized for the body (decoding only shrinks it) plus Basic credentials.
        let mut text = String::with_capacity(body.len() + 64);
        let mut params = match format {
            BodyFormat::Form => parse_form(body, &mut text)?,
            BodyFormat::Json => parse_json(body, &mut text)?,
        };
        let at = |span: Span| span.of(&text);
        for &(name, value) in &params {
            check_param(at(name), at(value))?;
        }
        for (i, &(name, _)) in params.iter().enumerate() {
            if params[..i].iter().any(|&(n, _)| at(n) == at(name)) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {} is repeated",
                    printable_name(at(name))
                )));
            }
        }
        // RFC 6749 §3.1: parameters sent without a value are treated as omitted.
        params.retain(|&(_, value)| !value.is_empty());

        let mut take = |name: &str| {
            params
                .iter()
                .position(|&(n, _)| at(n) == name)
                .map(|i| params.remove(i).1)
        };
        let body_id = take("client_id");
        let body_secret = take("client_secret");
        let basic = basic_credentials(headers)?;
        let (client_id, client_secret, credentials) = match basic {
            Some((id, secret)) => {
                if body_secret.is_some() {
                    return Err(OAuthError::invalid_request(
                        "client credentials were sent both in the Authorization header and in the body",
                    ));
                }
                if body_id.is_some_and(|b| at(b) != id) {
                    return Err(OAuthError::invalid_request(
                        "client_id in the body differs from the one in the Authorization header",
                    ));
                }
                let id = Span::push(&mut text, &id);
                let secret = Span::push(&mut text, &secret);
                (Some(id), Some(secret), CredentialSource::Basic)
            }
            None if body_id.is_some() || body_secret.is_some() => {
                (body_id, body_secret, CredentialSource::Body)
            }
            None => (None, None, CredentialSource::None),
        };
        let at = |span: Span| span.of(&text);

        let grant_type = match params.iter().find(|&&(n, _)| at(n) == "grant_type") {
            None => return Err(OAuthError::invalid_request("grant_type is missing")),
            Some(&(_, value)) => GrantType::from_name(at(value)),
        };
        if !allowed.contains(&grant_type) {
            return Err(OAuthError::unsupported_grant_type(format!(
                "grant_type {} is not supported",
                printable_name(grant_type.as_str())
            )));
        }
        let required = match grant_type {
            GrantType::AuthorizationCode => Some("code"),
            GrantType::RefreshToken => Some("refresh_token"),
            GrantType::Other(_) => None,
        };
        if let Some(required) = required {
            if !params.iter().any(|&(n, _)| at(n) == required) {
                return Err(OAuthError::invalid_request(format!(
                    "{required} is missing"
                )));
            }
        }
        Ok(TokenRequest {
            fields: Arc::new(Fields {
                grant_type,
                text,
                params,
                client_id,
                client_secret,
                credentials,
                format,
            }),
        })
    }

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

    /// Encodes the request as the `application/x-www-form-urlencoded` body the upstream wants
    /// (RFC 6749 Appendix B), with the credentials placed as `auth` says, followed by `extra`
    /// parameters not already present. Returns the body and, for [`ClientAuth::Basic`], the
    /// `Authorization` header value.
    pub fn to_form(
        &self,
        auth: ClientAuth,
        extra: &[(String, String)],
    ) -> (Bytes, Option<HeaderValue>) {
        let extra = extra
            .iter()
            .filter(|(name, _)| self.param(name).is_none())
            .map(|(name, value)| (name.as_str(), value.as_str()));
        let in_body = auth == ClientAuth::Body;
        let credentials = [
            ("client_id", self.client_id()),
            ("client_secret", self.client_secret()),
        ]
        .into_iter()
        .filter_map(|(name, value)| Some((name, value.filter(|_| in_body)?)));
        let pairs = || {
            self.params()
                .chain(extra.clone())
                .chain(credentials.clone())
        };
        // Sized exactly first, so that the form is written with one allocation and `Bytes`
        // takes the buffer as it is (a buffer with spare capacity costs `Bytes` one more).
        let len = pairs().fold(0usize, |len, (name, value)| {
            len + usize::from(len > 0) + form_encoded_len(name) + 1 + form_encoded_len(value)
        });
        let mut body = Vec::with_capacity(len);
        for (name, value) in pairs() {
            if !body.is_empty() {
                body.push(b'&');
            }
            append_form_encoded(&mut body, name);
            body.push(b'=');
            append_form_encoded(&mut body, value);
        }
        let authorization = match (auth, self.client_id()) {
            (ClientAuth::Basic, Some(id)) => Some(basic_header(id, self.client_secret())),
            _ => None,
        };
        (Bytes::from(body), authorization)
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

/// The bytes `application/x-www-form-urlencoded` leaves as they are (the WHATWG URL
/// standard's urlencoded serializer, as `form_urlencoded::byte_serialize`): ASCII alphanumerics
/// and `*-._`. A space becomes `+`, any other byte `%XX`.
static UNRESERVED: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] =
            matches!(b as u8, b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' | b'*' | b'-' | b'.' | b'_');
        b += 1;
    }
    table
};

/// The length of `value` once `application/x-www-form-urlencoded`: one table lookup and an
/// add per byte, no branch.
fn form_encoded_len(value: &str) -> usize {
    value
        .bytes()
        .fold(0, |len, b| len + usize::from(ENCODED_LEN[usize::from(b)]))
}

/// How many bytes each byte becomes: 1 (unreserved, or a space written as `+`) or 3 (`%XX`).
static ENCODED_LEN: [u8; 256] = {
    let mut table = [3u8; 256];
    let mut b = 0;
    while b < 256 {
        if UNRESERVED[b] || b == b' ' as usize {
            table[b] = 1;
        }
        b += 1;
    }
    table
};

/// Appends `value`, `application/x-www-form-urlencoded`: runs of unreserved bytes are copied
/// at once (a token or code is one run), the rest escaped.
fn append_form_encoded(out: &mut Vec<u8>, value: &str) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut rest = value.as_bytes();
    while !rest.is_empty() {
        let run = rest
            .iter()
            .position(|&b| !UNRESERVED[usize::from(b)])
            .unwrap_or(rest.len());
        out.extend_from_slice(&rest[..run]);
        let Some(&b) = rest.get(run) else {
            break;
        };
        if b == b' ' {
            out.push(b'+');
        } else {
            out.extend_from_slice(&[b'%', HEX[usize::from(b >> 4)], HEX[usize::from(b & 15)]]);
        }
        rest = &rest[run + 1..];
    }
}

/// `Basic base64(form(id):form(secret))`, RFC 6749 §2.3.1.
fn basic_header(id: &str, secret: Option<&str>) -> HeaderValue {
    let secret = secret.unwrap_or("");
    let mut credentials = Vec::with_capacity(form_encoded_len(id) + 1 + form_encoded_len(secret));
    append_form_encoded(&mut credentials, id);
    credentials.push(b':');
    append_form_encoded(&mut credentials, secret);
    let mut header = String::with_capacity(6 + credentials.len().div_ceil(3) * 4);
    header.push_str("Basic ");
    base64::engine::general_purpose::STANDARD.encode_string(&credentials, &mut header);
    let mut value = HeaderValue::try_from(header).expect("base64 is a valid header value");
    value.set_sensitive(true);
    value
}

/// Decides the body's encoding from Content-Type, sniffing when it is missing.
fn body_format(headers: &HeaderMap, body: &[u8]) -> Result<BodyFormat, OAuthError> {
    let mut values = headers.get_all(CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        // No Content-Type: Alexa has been seen sending JSON without one. JSON when the body
        // starts with `{`, a form otherwise.
        let first = body.iter().find(|b| !b.is_ascii_whitespace());
        return Ok(if first == Some(&b'{') {
            BodyFormat::Json
        } else {
            BodyFormat::Form
        });
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "the request has more than one Content-Type",
        ));
    }
    let media_type = super::media_type(value).unwrap_or("");
    if media_type.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        Ok(BodyFormat::Form)
    } else if media_type.eq_ignore_ascii_case("application/json") {
        Ok(BodyFormat::Json)
    } else {
        Err(OAuthError::invalid_request(
            "Content-Type must be application/x-www-form-urlencoded or application/json",
        ))
    }
}

/// Parses a form body strictly: invalid percent-encoding or UTF-8 is refused, not replaced.
/// Names and values are decoded into `text`.
fn parse_form(body: &[u8], text: &mut String) -> Result<Vec<(Span, Span)>, OAuthError> {
    // Sized from the separators, so the list is allocated once.
    let pairs = body.iter().filter(|b| **b == b'&').count() + 1;
    let mut params = Vec::with_capacity(pairs.min(MAX_PARAMS));
    for pair in body.split(|b| *b == b'&') {
        if pair.is_empty() {
            continue;
        }
        if params.len() == MAX_PARAMS {
            return Err(too_many_params());
        }
        let (name, value) = match pair.iter().position(|b| *b == b'=') {
            Some(i) => (&pair[..i], &pair[i + 1..]),
            None => (pair, &[][..]),
        };
        let name = form_decode_into(name, text).ok_or_else(|| {
            OAuthError::invalid_request("the form body is not valid UTF-8 form encoding")
        })?;
        let value = form_decode_into(value, text).ok_or_else(|| {
            OAuthError::invalid_request(format!(
                "parameter {} is not valid UTF-8 form encoding",
                printable_name(name.of(text))
            ))
        })?;
        if name.is_empty() {
            return Err(OAuthError::invalid_request("a form parameter has no name"));
        }
        params.push((name, value));
    }
    Ok(params)
}

fn too_many_params() -> OAuthError {
    OAuthError::invalid_request(format!("more than {MAX_PARAMS} parameters"))
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte, and
/// the result must be UTF-8. `None` on a malformed escape or invalid UTF-8.
pub(crate) fn form_decode(input: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(input.len());
    form_decode_into(input, &mut out)?;
    Some(out)
}

/// [`form_decode`], appended to `text`; `None` (with `text` as it was) on a malformed escape or
/// invalid UTF-8.
fn form_decode_into(input: &[u8], text: &mut String) -> Option<Span> {
    if !input.iter().any(|b| matches!(b, b'%' | b'+')) {
        return Some(Span::push(text, std::str::from_utf8(input).ok()?));
    }
    let decoded = percent_decode(input)?;
    Some(Span::push(text, std::str::from_utf8(&decoded).ok()?))
}

/// `+` as a space and `%XX` as a byte; `None` on a malformed escape.
fn percent_decode(input: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(input.len());
    let mut i = 0;
    while i < input.len() {
        match input[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hi = hex(*input.get(i + 1)?)?;
                let lo = hex(*input.get(i + 2)?)?;
                out.push(hi << 4 | lo);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    Some(out)
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Parses a JSON object of string values, keeping order and duplicates (refused later). Names
/// and values are appended to `text`.
fn parse_json(body: &[u8], text: &mut String) -> Result<Vec<(Span, Span)>, OAuthError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let params = match de.deserialize_map(ParamsVisitor { text }) {
        Ok(Ok(params)) => params,
        Ok(Err(error)) => return Err(error),
        Err(_) => {
            return Err(OAuthError::invalid_request(
                "the JSON body is not a valid JSON object",
            ))
        }
    };
    if de.end().is_err() {
        return Err(OAuthError::invalid_request(
            "the JSON body has data after the object",
        ));
    }
    Ok(params)
}

struct ParamsVisitor<'t> {
    text: &'t mut String,
}

impl<'de> Visitor<'de> for ParamsVisitor<'_> {
    type Value = Result<Vec<(Span, Span)>, OAuthError>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of string values")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        // Alexa sends at most seven parameters: one allocation for the usual request.
        let mut params = Vec::with_capacity(map.size_hint().unwrap_or(8).min(MAX_PARAMS));
        while let Some(name) = map.next_key_seed(Append(self.text))? {
            // JSON names are strings: only values can be of another type.
            let name = name.unwrap_or(Span { start: 0, end: 0 });
            if params.len() == MAX_PARAMS {
                // Drain nothing more: the answer is already decided.
                return Ok(Err(too_many_params()));
            }
            match map.next_value_seed(Append(self.text))? {
                Ok(value) => params.push((name, value)),
                Err(kind) => {
                    // Finish reading so that the error is about the type, not the syntax.
                    while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                    return Ok(Err(OAuthError::invalid_request(format!(
                        "parameter {} must be a string, not {kind}",
                        printable_name(name.of(self.text))
                    ))));
                }
            }
        }
        Ok(Ok(params))
    }
}

/// Reads a JSON string into the request's text; any other value gives the name of its type.
struct Append<'t>(&'t mut String);

impl<'de> de::DeserializeSeed<'de> for Append<'_> {
    type Value = Result<Span, &'static str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Append<'_> {
    type Value = Result<Span, &'static str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(Ok(Span::push(self.0, v)))
    }
    fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
        Ok(Err("a boolean"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
        Ok(Err("a number"))
    }
    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Err("null"))
    }
    fn visit_seq<A: de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(Err("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(Err("an object"))
    }
}

/// Refuses control characters anywhere, and non-VSCHAR in the values RFC 6749 Appendix A
/// restricts to `%x20-7E` (code, refresh token, client credentials).
fn check_param(name: &str, value: &str) -> Result<(), OAuthError> {
    // A form refuses a nameless pair while parsing; JSON allows `""` as a key, and encoding it
    // for the upstream would give a `=value` pair no server reads.
    if name.is_empty() {
        return Err(OAuthError::invalid_request("a parameter has no name"));
    }
    // What Alexa sends is printable ASCII: one pass settles both checks below.
    if is_vschar(name) && is_vschar(value) {
        return Ok(());
    }
    if has_control(name) || has_control(value) {
        return Err(OAuthError::invalid_request(format!(
            "parameter {} contains a control character",
            printable_name(name)
        )));
    }
    let vschar_only = matches!(
        name,
        "code" | "refresh_token" | "client_id" | "client_secret" | "grant_type" | "code_verifier"
    );
    if vschar_only && !is_vschar(value) {
        return Err(OAuthError::invalid_request(format!(
            "parameter {name} has characters outside %x20-7E (RFC 6749 Appendix A)"
        )));
    }
    Ok(())
}

/// Whether every byte of `text` is in `%x20-7E` (RFC 6749 Appendix A's VSCHAR and space).
fn is_vschar(text: &str) -> bool {
    text.bytes().all(|b| (0x20..=0x7e).contains(&b))
}

/// Whether `text` holds a control character (Unicode `Cc`, as `char::is_control`). ASCII text,
/// what Alexa sends, is checked byte by byte instead of decoding characters.
fn has_control(text: &str) -> bool {
    if text.is_ascii() {
        text.bytes().any(|b| b.is_ascii_control())
    } else {
        text.chars().any(char::is_control)
    }
}

/// A parameter name safe to put in an error description: names are not secrets, but a hostile
/// client could send anything as a name, so only short plain names are echoed.
fn printable_name(name: &str) -> Cow<'_, str> {
    if name.len() <= 40
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
    {
        Cow::Borrowed(name)
    } else {
        Cow::Borrowed("(unprintable name)")
    }
}

/// Reads `Authorization: Basic`, form-decoding id and secret (RFC 6749 §2.3.1).
fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>, OAuthError> {
    let mut values = headers.get_all(AUTHORIZATION).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(OAuthError::invalid_request(
            "the request has more than one Authorization header",
        ));
    }
    let malformed =
        || OAuthError::invalid_client("the Authorization header is not valid HTTP Basic");
    let value = value.to_str().map_err(|_| malformed())?.trim();
    let (scheme, encoded) = value.split_once(' ').ok_or_else(malformed)?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(OAuthError::invalid_client(
            "only HTTP Basic client authentication is accepted",
        ));
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| malformed())?;
    let decoded = std::str::from_utf8(&decoded).map_err(|_| malformed())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(malformed)?;
    let id = form_decode(id.as_bytes()).ok_or_else(malformed)?;
    let secret = form_decode(secret.as_bytes()).ok_or_else(malformed)?;
    if id.is_empty() {
        return Err(malformed());
    }
    for (name, value) in [("client_id", &id), ("client_secret", &secret)] {
        if !is_vschar(value) {
            return Err(OAuthError::invalid_client(format!(
                "the Basic {name} has characters outside %x20-7E"
            )));
        }
    }
    Ok(Some((id, secret)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::ErrorCode;
    use http::StatusCode;
    use proptest::prelude::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    fn form() -> HeaderMap {
        headers(&[("content-type", "application/x-www-form-urlencoded")])
    }

    fn basic(id: &str, secret: &str) -> String {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
        )
    }

    fn refused(h: &HeaderMap, body: &str) -> OAuthError {
        TokenRequest::parse(h, body.as_bytes()).unwrap_err()
    }

    #[test]
    fn a_json_parameter_without_a_name_is_refused() {
        // Found by the token_request fuzz target: `{"":"x"}` parsed, then encoded as the
        // nameless form pair `=x`, which no longer parsed.
        let body = r#"{"grant_type":"authorization_code","":"x","code":"c"}"#;
        let error = refused(&HeaderMap::new(), body);
        assert_eq!(error.code(), &ErrorCode::INVALID_REQUEST);
        assert_eq!(error.description(), Some("a parameter has no name"));
    }

    #[test]
    fn alexas_observed_form_parses() {
        let body = "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA&redirect_uri=https%3A%2F%2Flayla.amazon.com%2Fapi%2Fskill%2Flink%2FM3BVP74N95SP1F&client_id=alexa&client_secret=alexa";
        let r = TokenRequest::parse(&form(), body.as_bytes()).unwrap();
        assert_eq!(r.grant_type(), &GrantType::AuthorizationCode);
        assert_eq!(r.code(), Some("SplxlOBeZQQYbYS6WxSbIA"));
        assert_eq!(
            r.redirect_uri(),
            Some("https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F")
        );
        assert_eq!(r.client_secret(), Some("alexa"));
        assert_eq!(r.credential_source(), CredentialSource::Body);
        assert_eq!(r.body_format(), BodyFormat::Form);
    }

    #[test]
    fn json_body_without_content_type_is_sniffed() {
        let r = TokenRequest::parse(
            &HeaderMap::new(),
            b"  {\"grant_type\":\"refresh_token\",\"refresh_token\":\"r1\"}",
        )
        .unwrap();
        assert_eq!(r.body_format(), BodyFormat::Json);
        assert_eq!(r.refresh_token(), Some("r1"));
    }

    #[test]
    fn form_without_content_type_is_sniffed() {
        let r = TokenRequest::parse(
            &HeaderMap::new(),
            b"grant_type=refresh_token&refresh_token=r",
        )
        .unwrap();
        assert_eq!(r.body_format(), BodyFormat::Form);
    }

    #[test]
    fn content_type_parameters_and_case_are_accepted() {
        let h = headers(&[(
            "content-type",
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
        )]);
        assert!(TokenRequest::parse(&h, b"grant_type=refresh_token&refresh_token=r").is_ok());
        let h = headers(&[("content-type", "application/json;charset=utf-8")]);
        assert!(
            TokenRequest::parse(&h, br#"{"grant_type":"refresh_token","refresh_token":"r"}"#)
                .is_ok()
        );
    }

    #[test]
    fn other_media_types_are_invalid_requests() {
        for media in [
            "application/xml",
            "multipart/form-data; boundary=x",
            "text/plain",
            "",
        ] {
            let e = refused(
                &headers(&[("content-type", media)]),
                "grant_type=refresh_token&refresh_token=r",
            );
            assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST, "{media}");
        }
    }

    #[test]
    fn non_string_json_values_name_the_field() {
        let e = refused(
            &HeaderMap::new(),
            r#"{"grant_type":"authorization_code","code":123}"#,
        );
        assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST);
        assert_eq!(
            e.description(),
            Some("parameter code must be a string, not a number")
        );
        let e = refused(&HeaderMap::new(), r#"{"grant_type":["a"],"code":"x"}"#);
        assert_eq!(
            e.description(),
            Some("parameter grant_type must be a string, not an array")
        );
    }

    #[test]
    fn json_that_is_not_an_object_is_refused() {
        for body in [
            r#"["grant_type"]"#,
            r#"{"grant_type":"refresh_token""#,
            r#"{} {}"#,
        ] {
            let e = refused(&headers(&[("content-type", "application/json")]), body);
            assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST, "{body}");
        }
    }

    #[test]
    fn duplicate_parameters_are_refused() {
        let e = refused(&form(), "grant_type=authorization_code&code=a&code=b");
        assert_eq!(e.description(), Some("parameter code is repeated"));
        let e = refused(
            &HeaderMap::new(),
            r#"{"grant_type":"refresh_token","refresh_token":"a","refresh_token":"b"}"#,
        );
        assert_eq!(e.description(), Some("parameter refresh_token is repeated"));
    }

    #[test]
    fn invalid_percent_encoding_and_utf8_are_refused() {
        for body in [
            "grant_type=refresh_token&refresh_token=%zz",
            "grant_type=refresh_token&refresh_token=%4",
            "grant_type=refresh_token&refresh_token=%ff",
        ] {
            assert_eq!(
                refused(&form(), body).code(),
                &ErrorCode::INVALID_REQUEST,
                "{body}"
            );
        }
        let e = TokenRequest::parse(&form(), b"grant_type=refresh_token&refresh_token=\xff")
            .unwrap_err();
        assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST);
    }

    #[test]
    fn control_characters_and_non_vschar_codes_are_refused() {
        assert_eq!(
            refused(&form(), "grant_type=authorization_code&code=a%00b").code(),
            &ErrorCode::INVALID_REQUEST
        );
        assert_eq!(
            refused(&form(), "grant_type=authorization_code&code=%C3%A9").code(),
            &ErrorCode::INVALID_REQUEST
        );
    }

    #[test]
    fn grant_type_rules() {
        assert_eq!(
            refused(&form(), "code=a").description(),
            Some("grant_type is missing")
        );
        let e = refused(&form(), "grant_type=password&username=u");
        assert_eq!(e.code(), &ErrorCode::UNSUPPORTED_GRANT_TYPE);
        assert_eq!(
            refused(&form(), "grant_type=authorization_code").description(),
            Some("code is missing")
        );
        assert_eq!(
            refused(&form(), "grant_type=refresh_token&refresh_token=").description(),
            Some("refresh_token is missing")
        );
        let allowed = [GrantType::Other("client_credentials".into())];
        assert!(
            TokenRequest::parse_with(&form(), b"grant_type=client_credentials", &allowed).is_ok()
        );
    }

    #[test]
    fn basic_credentials_are_form_decoded() {
        // RFC 6749 §2.3.1: a secret with '+' and '%' is form-encoded before base64.
        let h = headers(&[("authorization", &basic("my%20client", "a%2Bb%25c+d"))]);
        let r = TokenRequest::parse(&h, b"grant_type=refresh_token&refresh_token=r").unwrap();
        assert_eq!(r.client_id(), Some("my client"));
        assert_eq!(r.client_secret(), Some("a+b%c d"));
        assert_eq!(r.credential_source(), CredentialSource::Basic);
    }

    #[test]
    fn malformed_basic_is_401_invalid_client() {
        for value in [
            "Basic !!!",
            "Basic",
            "Bearer abc",
            &basic("", "x"),
            "Basic bm9jb2xvbg==",
        ] {
            let e = refused(
                &headers(&[("authorization", value)]),
                "grant_type=refresh_token&refresh_token=r",
            );
            assert_eq!(e.code(), &ErrorCode::INVALID_CLIENT, "{value}");
            assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
        }
    }

    #[test]
    fn credentials_in_both_places_are_refused() {
        let h = headers(&[("authorization", &basic("alexa", "s"))]);
        let e = refused(
            &h,
            "grant_type=refresh_token&refresh_token=r&client_secret=s",
        );
        assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST);
        let e = refused(
            &h,
            "grant_type=refresh_token&refresh_token=r&client_id=other",
        );
        assert_eq!(e.code(), &ErrorCode::INVALID_REQUEST);
        assert!(TokenRequest::parse(
            &h,
            b"grant_type=refresh_token&refresh_token=r&client_id=alexa"
        )
        .is_ok());
    }

    #[test]
    fn empty_values_are_treated_as_omitted_and_order_is_kept() {
        let r = TokenRequest::parse(
            &form(),
            b"scope=&grant_type=authorization_code&code=c&code_verifier=v&redirect_uri=x",
        )
        .unwrap();
        let names: Vec<&str> = r.params().map(|(n, _)| n).collect();
        assert_eq!(
            names,
            ["grant_type", "code", "code_verifier", "redirect_uri"]
        );
    }

    #[test]
    fn a_code_with_an_ampersand_stays_one_parameter_when_encoded() {
        let r = TokenRequest::parse(
            &HeaderMap::new(),
            br#"{"grant_type":"authorization_code","code":"a&client_id=evil"}"#,
        )
        .unwrap();
        let (body, auth) = r.to_form(ClientAuth::Body, &[]);
        assert!(auth.is_none());
        assert_eq!(
            body,
            "grant_type=authorization_code&code=a%26client_id%3Devil"
        );
    }

    #[test]
    fn basic_toward_upstream_is_form_encoded_then_base64() {
        let r = TokenRequest::parse(
            &form(),
            b"grant_type=refresh_token&refresh_token=r&client_id=id%3A1&client_secret=a%2Bb",
        )
        .unwrap();
        let (body, auth) = r.to_form(ClientAuth::Basic, &[]);
        assert_eq!(body, "grant_type=refresh_token&refresh_token=r");
        assert_eq!(auth.unwrap(), basic("id%3A1", "a%2Bb").as_str());
    }

    #[test]
    fn extra_parameters_are_appended_unless_present() {
        let r = TokenRequest::parse(
            &form(),
            b"grant_type=refresh_token&refresh_token=r&format=xml",
        )
        .unwrap();
        let extra = [
            ("format".to_string(), "json".to_string()),
            ("a".to_string(), "b".to_string()),
        ];
        let (body, _) = r.to_form(ClientAuth::Body, &extra);
        assert_eq!(
            body,
            "grant_type=refresh_token&refresh_token=r&format=xml&a=b"
        );
    }

    #[test]
    fn debug_shows_names_but_no_secret() {
        let r = TokenRequest::parse(&form(), b"grant_type=authorization_code&code=thecode&code_verifier=V3R1F13R&client_id=alexa&client_secret=shh").unwrap();
        let debug = format!("{r:?}");
        for secret in ["thecode", "V3R1F13R", "shh"] {
            assert!(!debug.contains(secret), "{debug}");
        }
        assert!(debug.contains("code_verifier") && debug.contains("alexa"));
    }

    proptest! {
        #[test]
        fn form_encoding_round_trips(
            params in prop::collection::vec(("[a-z_]{1,12}", "[\\x20-\\x7e]{1,30}"), 0..6)
        ) {
            let mut seen = std::collections::HashSet::new();
            let params: Vec<(String, String)> = params
                .into_iter()
                .filter(|(n, _)| seen.insert(n.clone()) && !matches!(n.as_str(), "grant_type" | "code" | "client_id" | "client_secret"))
                .collect();
            let mut body = String::from("grant_type=authorization_code&code=c");
            for (n, v) in &params {
                body.push('&');
                body.push_str(&serde_urlencoded::to_string([(n, v)]).unwrap());
            }
            let r = TokenRequest::parse(&form(), body.as_bytes()).unwrap();
            let (encoded, _) = r.to_form(ClientAuth::Body, &[]);
            let again = TokenRequest::parse(&form(), &encoded).unwrap();
            let first: Vec<_> = r.params().collect();
            let second: Vec<_> = again.params().collect();
            prop_assert_eq!(first, second);
        }

        #[test]
        fn the_form_is_byte_for_byte_what_serde_urlencoded_writes(
            params in prop::collection::vec(("[a-z_]{1,12}", "\\PC{1,30}"), 0..6),
            basic in any::<bool>(),
        ) {
            let mut r = TokenRequest::parse(
                &form(),
                b"grant_type=authorization_code&code=c&client_id=a%20b&client_secret=s%26%2B%20x",
            )
            .unwrap();
            for (n, v) in &params {
                r.set_param(n.clone(), v.clone());
            }
            let extra = [("extra param".to_string(), "x/y z~".to_string())];
            let auth = if basic { ClientAuth::Basic } else { ClientAuth::Body };
            let (encoded, _) = r.to_form(auth, &extra);
            let mut pairs: Vec<(&str, &str)> = r.params().collect();
            pairs.push(("extra param", "x/y z~"));
            if !basic {
                pairs.push(("client_id", "a b"));
                pairs.push(("client_secret", "s&+ x"));
            }
            prop_assert_eq!(
                std::str::from_utf8(&encoded).unwrap(),
                serde_urlencoded::to_string(&pairs).unwrap()
            );
        }

        #[test]
        fn the_basic_header_encodes_as_form_urlencoded_does(id in "\\PC{1,20}", secret in "\\PC{0,20}") {
            use base64::Engine as _;
            let header = basic_header(&id, Some(&secret));
            let expected = format!(
                "{}:{}",
                form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>(),
                form_urlencoded::byte_serialize(secret.as_bytes()).collect::<String>(),
            );
            let encoded = header.to_str().unwrap().strip_prefix("Basic ").unwrap();
            let decoded = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
            prop_assert_eq!(String::from_utf8(decoded).unwrap(), expected);
            prop_assert!(header.is_sensitive());
        }

        #[test]
        fn parsing_never_panics(
            content_type in prop::option::of(prop::sample::select(vec!["application/json", "application/x-www-form-urlencoded", "text/xml", "application/json; charset=latin1"])),
            authorization in prop::option::of("[ -~]{0,40}"),
            body in prop::collection::vec(any::<u8>(), 0..300),
        ) {
            let mut h = HeaderMap::new();
            if let Some(ct) = content_type { h.insert(CONTENT_TYPE, HeaderValue::from_static(ct)); }
            if let Some(a) = authorization { if let Ok(v) = HeaderValue::from_str(&a) { h.insert(AUTHORIZATION, v); } }
            if let Err(e) = TokenRequest::parse(&h, &body) {
                prop_assert!(e.status().is_client_error());
            }
        }
    }
}

//! RFC 6749 §5.2 error answers.
//!
//! Every refusal the bridge makes, and every upstream failure it normalizes, becomes an
//! [`OAuthError`]: an `error` code, an optional `error_description` and an HTTP status, rendered
//! as the JSON body RFC 6749 §5.2 defines, with `Cache-Control: no-store` and `Pragma: no-cache`.
//!
//! Alexa unlinks a user when the token endpoint answers `invalid_grant` or `invalid_client`, so
//! the bridge only ever says those when the request itself is at fault or the upstream said so;
//! faults on the path are [`OAuthError::server_error`] or
//! [`OAuthError::temporarily_unavailable`] with a 5xx status.

use std::borrow::Cow;
use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA, WWW_AUTHENTICATE};
use http::{HeaderValue, Response, StatusCode};

/// An RFC 6749 §5.2 `error` code.
///
/// The standard codes are associated constants; codes an upstream invents (GitHub's
/// `bad_verification_code`, Slack's `invalid_code`) can be carried with [`ErrorCode::new`].
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ErrorCode(Cow<'static, str>);

impl ErrorCode {
    /// The request is missing a parameter, repeats one, or is otherwise malformed.
    pub const INVALID_REQUEST: ErrorCode = ErrorCode(Cow::Borrowed("invalid_request"));
    /// Client authentication failed. Alexa unlinks on this: only the upstream may say it.
    pub const INVALID_CLIENT: ErrorCode = ErrorCode(Cow::Borrowed("invalid_client"));
    /// The grant (code or refresh token) is invalid, expired or revoked. Alexa unlinks on this:
    /// only the upstream may say it.
    pub const INVALID_GRANT: ErrorCode = ErrorCode(Cow::Borrowed("invalid_grant"));
    /// The client may not use this grant type.
    pub const UNAUTHORIZED_CLIENT: ErrorCode = ErrorCode(Cow::Borrowed("unauthorized_client"));
    /// The grant type is not supported by the bridge's configuration.
    pub const UNSUPPORTED_GRANT_TYPE: ErrorCode =
        ErrorCode(Cow::Borrowed("unsupported_grant_type"));
    /// The requested scope is invalid.
    pub const INVALID_SCOPE: ErrorCode = ErrorCode(Cow::Borrowed("invalid_scope"));
    /// Something on the path failed (RFC 6749 §4.1.2.1 defines it for the authorization
    /// endpoint; the bridge uses it for upstream faults on the token endpoint too).
    pub const SERVER_ERROR: ErrorCode = ErrorCode(Cow::Borrowed("server_error"));
    /// The upstream is overloaded or down for now; try again later.
    pub const TEMPORARILY_UNAVAILABLE: ErrorCode =
        ErrorCode(Cow::Borrowed("temporarily_unavailable"));

    /// An error code not defined by RFC 6749, such as one an upstream invented.
    ///
    /// Characters outside the set RFC 6749 §5.2 allows (`%x20-21 / %x23-5B / %x5D-7E`) are
    /// dropped; an empty result becomes `server_error`.
    pub fn new(code: impl Into<Cow<'static, str>>) -> Self {
        let code = code.into();
        if !code.is_empty() && code.bytes().all(is_rfc6749_error_char) {
            return ErrorCode(code);
        }
        let cleaned: String = code
            .chars()
            .filter(|c| is_rfc6749_error_char_ch(*c))
            .collect();
        if cleaned.is_empty() {
            ErrorCode::SERVER_ERROR
        } else {
            ErrorCode(Cow::Owned(cleaned))
        }
    }

    /// The code as it appears in the `error` field.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this code tells Alexa the account link is dead (`invalid_grant`,
    /// `invalid_client`), which makes Alexa unlink the user.
    pub fn unlinks(&self) -> bool {
        *self == ErrorCode::INVALID_GRANT || *self == ErrorCode::INVALID_CLIENT
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Characters RFC 6749 §5.2 allows in `error` and `error_description`.
fn is_rfc6749_error_char(b: u8) -> bool {
    matches!(b, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)
}

fn is_rfc6749_error_char_ch(c: char) -> bool {
    c.is_ascii() && is_rfc6749_error_char(c as u8)
}

/// An OAuth 2.0 error answer (RFC 6749 §5.2).
///
/// Build one with the constructors named after the codes, add a description with
/// [`OAuthError::with_description`], and turn it into a response with
/// [`OAuthError::into_response`] (or [`OAuthError::to_json`] for the body alone).
///
/// ```
/// use account_link_bridge::OAuthError;
///
/// let error = OAuthError::invalid_request("grant_type is missing");
/// assert_eq!(error.status(), 400);
/// assert_eq!(
///     error.to_json(),
///     r#"{"error":"invalid_request","error_description":"grant_type is missing"}"#
/// );
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct OAuthError {
    code: ErrorCode,
    description: Option<Cow<'static, str>>,
    status: StatusCode,
}

impl OAuthError {
    /// An error with the given code and HTTP status and no description.
    pub fn new(code: ErrorCode, status: StatusCode) -> Self {
        OAuthError {
            code,
            description: None,
            status,
        }
    }

    /// 400 `invalid_request`.
    pub fn invalid_request(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::new(ErrorCode::INVALID_REQUEST, StatusCode::BAD_REQUEST)
            .with_description(description)
    }

    /// 401 `invalid_client`, answered with `WWW-Authenticate: Basic` (RFC 6749 §5.2).
    pub fn invalid_client(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::new(ErrorCode::INVALID_CLIENT, StatusCode::UNAUTHORIZED)
            .with_description(description)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::new(ErrorCode::UNSUPPORTED_GRANT_TYPE, StatusCode::BAD_REQUEST)
            .with_description(description)
    }

    /// 413 `invalid_request`: the request body is larger than the configured limit.
    pub fn payload_too_large(limit: usize) -> Self {
        OAuthError::new(ErrorCode::INVALID_REQUEST, StatusCode::PAYLOAD_TOO_LARGE)
            .with_description(format!("request body exceeds {limit} bytes"))
    }

    /// 502 `server_error`: the upstream answered something that is not a token nor an
    /// RFC 6749 error, or could not be reached.
    pub fn server_error(description: impl Into<Cow<'static, str>>) -> Self {
        OAuthError::new(ErrorCode::SERVER_ERROR, StatusCode::BAD_GATEWAY)
            .with_description(description)
    }

    /// `temporarily_unavailable` with the given 5xx status (503 for overload, 504 for a timeout).
    pub fn temporarily_unavailable(
        status: StatusCode,
        description: impl Into<Cow<'static, str>>,
    ) -> Self {
        OAuthError::new(ErrorCode::TEMPORARILY_UNAVAILABLE, status).with_description(description)
    }

    /// Sets the `error_description`.
    ///
    /// Characters outside the set RFC 6749 §5.2 allows are replaced by `?`. Never put a
    /// client secret, code or token in a description.
    pub fn with_description(mut self, description: impl Into<Cow<'static, str>>) -> Self {
        let description = description.into();
        self.description = if description.bytes().all(is_rfc6749_error_char) {
            Some(description)
        } else {
            Some(Cow::Owned(
                description
                    .chars()
                    .map(|c| if is_rfc6749_error_char_ch(c) { c } else { '?' })
                    .collect(),
            ))
        };
        self
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// The `error` code.
    pub fn code(&self) -> &ErrorCode {
        &self.code
    }

    /// The `error_description`, if any.
    pub fn description(&self) -> Option<&str> {
        self.description.as_deref()
    }

    /// The HTTP status of the answer.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The JSON body: `{"error":"…","error_description":"…"}`.
    pub fn to_json(&self) -> String {
        #[derive(serde::Serialize)]
        struct Body<'a> {
            error: &'a str,
            #[serde(skip_serializing_if = "Option::is_none")]
            error_description: Option<&'a str>,
        }
        serde_json::to_string(&Body {
            error: self.code.as_str(),
            error_description: self.description.as_deref(),
        })
        .expect("serializing two strings cannot fail")
    }

    /// Renders the answer: status, JSON body, `Content-Type: application/json;charset=UTF-8`,
    /// `Cache-Control: no-store`, `Pragma: no-cache`, and `WWW-Authenticate: Basic` on a 401.
    pub fn into_response<B: From<Bytes>>(self) -> Response<B> {
        let body = Bytes::from(self.to_json());
        let mut response = Response::new(B::from(body.clone()));
        *response.status_mut() = self.status;
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, super::json_content_type());
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
        headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(
                WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"token\""),
            );
        }
        response
    }
}

impl fmt::Debug for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OAuthError")
            .field("code", &self.code)
            .field("description", &self.description)
            .field("status", &self.status.as_u16())
            .finish()
    }
}

impl fmt::Display for OAuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.code, self.status.as_u16())?;
        if let Some(description) = &self.description {
            write!(f, ": {description}")?;
        }
        Ok(())
    }
}

impl std::error::Error for OAuthError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_client_is_401_with_www_authenticate() {
        let response: Response<Bytes> =
            OAuthError::invalid_client("bad Basic header").into_response();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert!(response.headers()[WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert_eq!(response.headers()[CACHE_CONTROL], "no-store");
        assert_eq!(response.headers()[PRAGMA], "no-cache");
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap();
        assert_eq!(body["error"], "invalid_client");
    }

    #[test]
    fn a_400_has_no_www_authenticate_and_a_correct_length() {
        let response: Response<Bytes> = OAuthError::invalid_request("x").into_response();
        assert!(response.headers().get(WWW_AUTHENTICATE).is_none());
        assert_eq!(
            response.headers()[CONTENT_LENGTH],
            response.body().len().to_string().as_str()
        );
        assert_eq!(
            response.headers()[CONTENT_TYPE],
            "application/json;charset=UTF-8"
        );
    }

    #[test]
    fn descriptions_are_restricted_to_the_rfc_character_set() {
        let error = OAuthError::server_error("quote \" backslash \\ é\n");
        assert_eq!(error.description(), Some("quote ? backslash ? ??"));
    }

    #[test]
    fn invented_codes_are_cleaned_and_never_empty() {
        assert_eq!(
            ErrorCode::new("bad_verification_code").as_str(),
            "bad_verification_code"
        );
        assert_eq!(ErrorCode::new("a\"b").as_str(), "ab");
        assert_eq!(ErrorCode::new("\"\\"), ErrorCode::SERVER_ERROR);
    }

    #[test]
    fn only_invalid_grant_and_invalid_client_unlink() {
        assert!(ErrorCode::INVALID_GRANT.unlinks());
        assert!(ErrorCode::INVALID_CLIENT.unlinks());
        assert!(!ErrorCode::SERVER_ERROR.unlinks());
        assert!(!ErrorCode::INVALID_REQUEST.unlinks());
    }
}

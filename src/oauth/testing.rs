//! Helpers shared by the unit tests of the vocabulary.

use base64::Engine as _;
use http::{HeaderMap, HeaderValue};

use super::{OAuthError, TokenRequest};

pub(super) fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        map.append(*name, HeaderValue::from_str(value).unwrap());
    }
    map
}

pub(super) fn form() -> HeaderMap {
    headers(&[("content-type", "application/x-www-form-urlencoded")])
}

pub(super) fn basic(id: &str, secret: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{id}:{secret}"))
    )
}

pub(super) fn refused(h: &HeaderMap, body: &str) -> OAuthError {
    TokenRequest::parse(h, body.as_bytes()).unwrap_err()
}

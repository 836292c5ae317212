//! Media types of `Content-Type` values, read and written the one way every module does.

use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue};

/// The media type of a `Content-Type` value: what comes before any `;` parameter, trimmed
/// (`None` when the value is not visible ASCII). Compare it without case.
pub(crate) fn media_type(value: &HeaderValue) -> Option<&str> {
    value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(str::trim)
}

/// The media type of the `Content-Type` in `headers`, if any (see [`media_type`]).
pub(crate) fn content_media_type(headers: &HeaderMap) -> Option<&str> {
    headers.get(CONTENT_TYPE).and_then(media_type)
}

/// `application/json;charset=UTF-8`, the Content-Type of every JSON answer.
pub(crate) fn json_content_type() -> HeaderValue {
    HeaderValue::from_static("application/json;charset=UTF-8")
}

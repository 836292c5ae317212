//! What the browser is answered: 302 redirects, errors to Alexa's redirect URL, and small static
//! HTML pages for the requests that cannot be trusted with a redirect.

use http::header::{
    CACHE_CONTROL, CONTENT_LENGTH, CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION,
    REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use http::{HeaderValue, Response, StatusCode};
use url::Url;

use super::report::{AuthorizeReport, AuthorizeVerdict};
use super::GrantMode;
use crate::body::FullBody;
use crate::oauth::ErrorCode;

/// The tracing target of the middleman's debug lines.
pub(super) const TARGET: &str = "account_link_bridge::authorize";

/// Sends an RFC 6749 §4.1.2.1 error to Alexa's (checked) redirect URL: in the query for the
/// code grant, in the fragment for the implicit grant (§4.2.2.1).
pub(super) fn to_alexa_error(
    mode: GrantMode,
    alexa_redirect: &Url,
    alexa_state: &str,
    code: &ErrorCode,
    description: Option<&str>,
) -> Response<FullBody> {
    let mut location = alexa_redirect.clone();
    let mut pairs = form_urlencoded::Serializer::new(String::new());
    pairs.append_pair("error", code.as_str());
    if let Some(description) = description {
        pairs.append_pair("error_description", description);
    }
    pairs.append_pair("state", alexa_state);
    let pairs = pairs.finish();
    match mode {
        GrantMode::Code => location.set_query(Some(&pairs)),
        GrantMode::Implicit => location.set_fragment(Some(&pairs)),
    }
    redirect(&location)
}

/// The middleman's verdict on a request, at debug level.
pub(super) fn debug_verdict(verdict: &str) {
    tracing::debug!(target: TARGET, verdict, "authorization middleman");
}

/// A 302 to `location` that no cache keeps and no `Referer` repeats.
pub(super) fn redirect(location: &Url) -> Response<FullBody> {
    let mut response = Response::new(FullBody::default());
    *response.status_mut() = StatusCode::FOUND;
    let headers = response.headers_mut();
    match HeaderValue::from_str(location.as_str()) {
        Ok(location) => {
            headers.insert(LOCATION, location);
        }
        // A parsed URL is ASCII without control characters; this cannot happen.
        Err(_) => return page(StatusCode::INTERNAL_SERVER_ERROR, "Error", "bad redirect"),
    }
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// A refusal without redirect: the request cannot be trusted to say where to send the user.
pub(super) fn refused(report: &mut AuthorizeReport, reason: &'static str) -> Response<FullBody> {
    debug_verdict(reason);
    report.verdict(AuthorizeVerdict::Refused, reason);
    refusal(reason)
}

/// The 400 page of a refusal.
pub(super) fn refusal(reason: &'static str) -> Response<FullBody> {
    page(StatusCode::BAD_REQUEST, "Account linking failed", reason)
}

/// A small HTML page. `reason` is always one of the middleman's fixed texts, never input.
pub(super) fn page(
    status: StatusCode,
    title: &'static str,
    reason: &'static str,
) -> Response<FullBody> {
    let body = format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title></head>\
         <body><h1>{title}</h1><p>{reason}.</p><p>Close this page and start again from the Alexa app.</p></body></html>\n"
    );
    let mut response = Response::new(FullBody::from(body.clone()));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Static text only: no script, no framing (RFC 9700 §4.16, clickjacking), no sniffing.
    headers.insert(
        CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'none'; frame-ancestors 'none'"),
    );
    headers.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    response
}

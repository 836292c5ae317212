//! HTTP Basic client credentials (RFC 6749 §2.3.1): id and secret are form-encoded before
//! base64, both ways.

use base64::Engine as _;
use http::header::AUTHORIZATION;
use http::{HeaderMap, HeaderValue};

use super::form::{append_form_encoded, form_decode};
use super::parse::is_vschar;
use super::OAuthError;

/// `Basic base64(form(id):form(secret))`, RFC 6749 §2.3.1.
pub(super) fn basic_header(id: &str, secret: Option<&str>) -> HeaderValue {
    let secret = secret.unwrap_or("");
    let mut credentials = Vec::with_capacity(3 * (id.len() + secret.len()) + 1);
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

/// The `Authorization` value that sends client credentials with HTTP Basic as RFC 6749 §2.3.1
/// wants it: id and secret form-encoded, then base64 (`Basic base64(form(id):form(secret))`),
/// marked sensitive. What the request layer sends upstream under
/// [`ClientAuth::Basic`](super::ClientAuth::Basic); public for tools that probe an upstream as
/// the bridge would (the `bridge doctor`).
///
/// ```
/// use account_link_bridge::oauth::basic_authorization;
///
/// let value = basic_authorization("my client", "a+b");
/// // base64("my+client:a%2Bb")
/// assert_eq!(value, "Basic bXkrY2xpZW50OmElMkJi");
/// assert!(value.is_sensitive());
/// ```
pub fn basic_authorization(client_id: &str, client_secret: &str) -> HeaderValue {
    basic_header(client_id, Some(client_secret))
}

/// Reads `Authorization: Basic`, form-decoding id and secret (RFC 6749 §2.3.1).
pub(crate) fn basic_credentials(
    headers: &HeaderMap,
) -> Result<Option<(String, String)>, OAuthError> {
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
    use super::super::testing::{basic, form, headers, refused};
    use super::super::{ClientAuth, CredentialSource, ErrorCode, TokenRequest};
    use super::*;
    use http::StatusCode;
    use proptest::prelude::*;

    #[test]
    fn the_public_basic_value_reads_back_as_the_same_id_and_secret() {
        // What the doctor's probe sends is what the bridge's own reader takes apart.
        for (id, secret) in [("alexa", "s"), ("my client", "a+b%c:d"), ("id", "")] {
            let mut h = HeaderMap::new();
            h.insert(AUTHORIZATION, basic_authorization(id, secret));
            assert_eq!(
                basic_credentials(&h).unwrap(),
                Some((id.to_owned(), secret.to_owned()))
            );
        }
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

    proptest! {
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
    }
}

//! Reading a token request strictly from what Alexa may send: a form or JSON, with or without
//! Content-Type, credentials in HTTP Basic or the body.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use http::header::CONTENT_TYPE;
use http::HeaderMap;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

use super::basic::basic_credentials;
use super::form::append_form_decoded;
use super::request::{Fields, Span};
use super::{BodyFormat, CredentialSource, GrantType, OAuthError, TokenRequest};

/// The most parameters a token request may carry. Alexa sends at most seven; the bound keeps the
/// duplicate check cheap on hostile bodies.
const MAX_PARAMS: usize = 64;

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

/// One form component decoded into the request's text (see [`append_form_decoded`]).
fn form_decode_into(input: &[u8], text: &mut String) -> Option<Span> {
    let start = text.len();
    append_form_decoded(input, text)?;
    Some(Span {
        start,
        end: text.len(),
    })
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
pub(super) fn is_vschar(text: &str) -> bool {
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

#[cfg(test)]
mod tests {
    use super::super::testing::{basic, form, headers, refused};
    use super::super::ErrorCode;
    use super::*;
    use http::header::AUTHORIZATION;
    use http::HeaderValue;
    use proptest::prelude::*;

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

    proptest! {
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

//! The `application/x-www-form-urlencoded` codec (RFC 6749 Appendix B): a token request encoded
//! as the form the upstream wants, and form components decoded strictly.

use bytes::Bytes;
use http::HeaderValue;

use super::basic::basic_header;
use super::{ClientAuth, TokenRequest};

impl TokenRequest {
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
        let pairs = self.params().chain(extra).chain(credentials);
        let mut body = Vec::with_capacity(256);
        for (name, value) in pairs {
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

/// Appends `value`, `application/x-www-form-urlencoded` (RFC 6749 Appendix B, the WHATWG URL
/// standard's urlencoded serializer): ASCII alphanumerics and `*-._` as they are, a space as
/// `+`, any other byte `%XX`.
pub(super) fn append_form_encoded(out: &mut Vec<u8>, value: &str) {
    for chunk in form_urlencoded::byte_serialize(value.as_bytes()) {
        out.extend_from_slice(chunk.as_bytes());
    }
}

/// Decodes one `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte, and
/// the result must be UTF-8. `None` on a malformed escape or invalid UTF-8.
pub(crate) fn form_decode(input: &[u8]) -> Option<String> {
    let mut out = String::with_capacity(input.len());
    append_form_decoded(input, &mut out)?;
    Some(out)
}

/// [`form_decode`], appended to `out`; `None` (with `out` as it was) on a malformed escape or
/// invalid UTF-8.
pub(super) fn append_form_decoded(input: &[u8], out: &mut String) -> Option<()> {
    if !input.iter().any(|b| matches!(b, b'%' | b'+')) {
        out.push_str(std::str::from_utf8(input).ok()?);
        return Some(());
    }
    let decoded = percent_decode(input)?;
    out.push_str(std::str::from_utf8(&decoded).ok()?);
    Some(())
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

#[cfg(test)]
mod tests {
    use super::super::testing::form;
    use super::*;
    use http::HeaderMap;
    use proptest::prelude::*;

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
    }
}

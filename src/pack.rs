//! Packing upstream fields into the access token Alexa keeps, and the exact inverse.
//!
//! Alexa stores only the `access_token` (and refresh token) of a token answer and hands the
//! access token to the skill with every request. Salesforce's answer also carries the
//! `instance_url` the skill must call (and, for JWT-format access tokens, `api_instance_url`, the
//! host of its REST APIs); Alexa would drop them. The bridge therefore *packs* such
//! fields into the access token, and the skill *unpacks* them with [`PackedToken::unpack`].
//!
//! # Format, version 1
//!
//! ```text
//! packed = access_token *( SEP field_value )
//! ```
//!
//! `SEP` is the configured separator, one character (default: a space, so skills written for the
//! published Express bridge, which split on `" "`, keep working). The field values follow in the
//! order of [`PackFormat::fields`]. A field the upstream did not send is written as an empty
//! value, and empty values at the end are left out, so a token without any packed field is the
//! bare access token. Neither the access token nor a field value may contain the separator: the
//! bridge refuses to pack such an answer (it answers a JSON `server_error`) rather than hand Alexa
//! a token the skill cannot unpack. The packed token is at most [`PackFormat::max_len`] bytes.

use std::borrow::Cow;
use std::fmt;

/// The version of the packed-token format this crate writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// How upstream fields are packed into the access token: which fields, in which order, with
/// which separator, and the longest packed token allowed.
///
/// ```
/// use account_link_bridge::pack::PackFormat;
///
/// let format = PackFormat::new().field("instance_url");
/// let packed = format
///     .pack("00Dx0!AR8AQ", |name| (name == "instance_url").then_some("https://na1.salesforce.com"))
///     .unwrap();
/// assert_eq!(packed, "00Dx0!AR8AQ https://na1.salesforce.com");
///
/// let token = format.unpack(&packed).unwrap();
/// assert_eq!(token.access_token(), "00Dx0!AR8AQ");
/// assert_eq!(token.field("instance_url"), Some("https://na1.salesforce.com"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct PackFormat {
    separator: char,
    fields: Vec<Cow<'static, str>>,
    max_len: usize,
}

impl PackFormat {
    /// The default longest packed token: 4096 bytes. Alexa's limit for third-party tokens is
    /// not published (the only figure found, 2048, is for Amazon's own tokens), so this is a
    /// setting: lower it with [`PackFormat::max_len`] if Alexa refuses long tokens.
    pub const DEFAULT_MAX_LEN: usize = 4096;

    /// A format with no fields, a single-space separator and the default maximum length.
    pub fn new() -> Self {
        PackFormat {
            separator: ' ',
            fields: Vec::new(),
            max_len: Self::DEFAULT_MAX_LEN,
        }
    }

    /// Salesforce's: `instance_url` packed after a single space, then `api_instance_url` after
    /// another when the answer carries one (JWT-format access tokens do).
    ///
    /// A token packed before `api_instance_url` was added (the access token and `instance_url`
    /// only) is what this format writes for an answer without `api_instance_url`, so it still
    /// unpacks.
    pub fn salesforce() -> Self {
        PackFormat::new()
            .field("instance_url")
            .field("api_instance_url")
    }

    /// Appends a field to pack, after those already named.
    pub fn field(mut self, name: impl Into<Cow<'static, str>>) -> Self {
        self.fields.push(name.into());
        self
    }

    /// Sets the separator: one character, so that refusing values that contain it is enough
    /// to make unpacking exact (a longer separator could straddle a value's edge).
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Sets the longest packed token, in bytes.
    pub fn max_len(mut self, max_len: usize) -> Self {
        self.max_len = max_len;
        self
    }

    /// The fields packed, in order.
    pub fn fields(&self) -> impl ExactSizeIterator<Item = &str> {
        self.fields.iter().map(|f| f.as_ref())
    }

    /// The separator.
    pub fn separator_char(&self) -> char {
        self.separator
    }

    /// The longest packed token allowed, in bytes.
    pub fn max_length(&self) -> usize {
        self.max_len
    }

    /// Whether this format packs any field at all.
    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// Packs `access_token` with the value `value_of(field)` gives for each field.
    ///
    /// Fails when the access token is empty, when it or a value contains the separator, or when
    /// the result would be longer than the maximum.
    pub fn pack<'a>(
        &self,
        access_token: &str,
        mut value_of: impl FnMut(&str) -> Option<&'a str>,
    ) -> Result<String, PackError> {
        if access_token.is_empty() {
            return Err(PackError::EmptyAccessToken);
        }
        if access_token.contains(self.separator) {
            return Err(PackError::SeparatorInAccessToken);
        }
        let mut values: Vec<&str> = Vec::with_capacity(self.fields.len());
        for field in &self.fields {
            let value = value_of(field).unwrap_or("");
            if value.contains(self.separator) {
                return Err(PackError::SeparatorInField(field.to_string()));
            }
            values.push(value);
        }
        while values.last() == Some(&"") {
            values.pop();
        }
        let len = access_token.len()
            + values
                .iter()
                .map(|v| v.len() + self.separator.len_utf8())
                .sum::<usize>();
        if len > self.max_len {
            return Err(PackError::TooLong {
                len,
                max: self.max_len,
            });
        }
        let mut packed = String::with_capacity(len);
        packed.push_str(access_token);
        for value in values {
            packed.push(self.separator);
            packed.push_str(value);
        }
        Ok(packed)
    }

    /// Unpacks a token this format packed: the exact inverse of [`PackFormat::pack`]. A string
    /// `pack` never writes (longer than the maximum, or ending with an empty field) is refused,
    /// so that one token has one packed form.
    pub fn unpack(&self, packed: &str) -> Result<PackedToken, UnpackError> {
        if packed.len() > self.max_len {
            return Err(UnpackError::TooLong {
                len: packed.len(),
                max: self.max_len,
            });
        }
        if packed.ends_with(self.separator) {
            return Err(UnpackError::TrailingEmptyField);
        }
        let mut parts = packed.split(self.separator);
        let access_token = parts.next().unwrap_or("");
        if access_token.is_empty() {
            return Err(UnpackError::EmptyAccessToken);
        }
        let mut fields = Vec::with_capacity(self.fields.len());
        let mut names = self.fields.iter();
        for value in parts {
            let Some(name) = names.next() else {
                return Err(UnpackError::TooManyParts {
                    expected: self.fields.len(),
                });
            };
            if !value.is_empty() {
                fields.push((name.to_string(), value.to_string()));
            }
        }
        Ok(PackedToken {
            access_token: access_token.to_string(),
            fields,
        })
    }
}

impl Default for PackFormat {
    fn default() -> Self {
        PackFormat::new()
    }
}

impl fmt::Debug for PackFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackFormat")
            .field("separator", &self.separator)
            .field("fields", &self.fields)
            .field("max_len", &self.max_len)
            .finish()
    }
}

/// An access token unpacked into the upstream's own access token and the packed fields.
///
/// Its `Debug` output redacts the access token.
#[derive(Clone, PartialEq, Eq)]
pub struct PackedToken {
    access_token: String,
    fields: Vec<(String, String)>,
}

impl PackedToken {
    /// Unpacks a token packed with Salesforce's format ([`PackFormat::salesforce`]): the access
    /// token, a space, the instance URL.
    ///
    /// ```
    /// use account_link_bridge::PackedToken;
    ///
    /// // What a skill receives from Alexa in `context.System.user.accessToken`:
    /// let token = PackedToken::unpack("00Dx0!AR8AQ https://na1.salesforce.com").unwrap();
    /// assert_eq!(token.access_token(), "00Dx0!AR8AQ");
    /// assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));
    /// ```
    pub fn unpack(packed: &str) -> Result<PackedToken, UnpackError> {
        PackFormat::salesforce().unpack(packed)
    }

    /// The upstream's own access token, to send as `Authorization: Bearer …` to its APIs.
    pub fn access_token(&self) -> &str {
        &self.access_token
    }

    /// The packed `instance_url`, if there was one.
    pub fn instance_url(&self) -> Option<&str> {
        self.field("instance_url")
    }

    /// The packed `api_instance_url`, if there was one: the host of Salesforce's REST APIs,
    /// which its JWT-format access tokens name beside `instance_url`.
    ///
    /// ```
    /// use account_link_bridge::PackedToken;
    ///
    /// let token = PackedToken::unpack(
    ///     "eyJ0.eyJ1.c2ln https://acme.my.salesforce.com https://api.salesforce.com",
    /// )
    /// .unwrap();
    /// assert_eq!(token.instance_url(), Some("https://acme.my.salesforce.com"));
    /// assert_eq!(token.api_instance_url(), Some("https://api.salesforce.com"));
    /// ```
    pub fn api_instance_url(&self) -> Option<&str> {
        self.field("api_instance_url")
    }

    /// A packed field by name, if it was present.
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// All packed fields present, in packing order.
    pub fn fields(&self) -> impl Iterator<Item = (&str, &str)> {
        self.fields.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// Splits into the access token and the fields.
    pub fn into_parts(self) -> (String, Vec<(String, String)>) {
        (self.access_token, self.fields)
    }
}

impl fmt::Debug for PackedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PackedToken")
            .field("access_token", &"[redacted]")
            .field("fields", &self.fields)
            .finish()
    }
}

/// Why an upstream answer could not be packed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PackError {
    /// The upstream access token is empty.
    EmptyAccessToken,
    /// The upstream access token contains the separator, so unpacking would split it.
    SeparatorInAccessToken,
    /// The named field's value contains the separator.
    SeparatorInField(String),
    /// The packed token would be longer than the configured maximum.
    TooLong {
        /// The packed length.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

impl fmt::Display for PackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PackError::EmptyAccessToken => f.write_str("the upstream access token is empty"),
            PackError::SeparatorInAccessToken => {
                f.write_str("the upstream access token contains the pack separator")
            }
            PackError::SeparatorInField(name) => {
                write!(f, "the upstream field {name} contains the pack separator")
            }
            PackError::TooLong { len, max } => {
                write!(
                    f,
                    "the packed token would be {len} bytes, over the maximum of {max}"
                )
            }
        }
    }
}

impl std::error::Error for PackError {}

/// Why a token could not be unpacked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnpackError {
    /// The token is empty, or starts with the separator.
    EmptyAccessToken,
    /// The token has more parts than the format has fields: it was not packed by this format.
    TooManyParts {
        /// The number of fields the format packs.
        expected: usize,
    },
    /// The token ends with the separator: an empty last field, which packing leaves out.
    TrailingEmptyField,
    /// The token is longer than the format's maximum, so packing never wrote it.
    TooLong {
        /// The token's length.
        len: usize,
        /// The maximum.
        max: usize,
    },
}

impl fmt::Display for UnpackError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UnpackError::EmptyAccessToken => f.write_str("the packed token has no access token"),
            UnpackError::TooManyParts { expected } => write!(
                f,
                "the packed token has more than {expected} packed field(s): not packed by this format"
            ),
            UnpackError::TrailingEmptyField => {
                f.write_str("the packed token ends with an empty field: not packed by this format")
            }
            UnpackError::TooLong { len, max } => write!(
                f,
                "the packed token is {len} bytes, over the maximum of {max}: not packed by this format"
            ),
        }
    }
}

impl std::error::Error for UnpackError {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn salesforce_tokens_pack_with_a_single_space() {
        let packed = PackFormat::salesforce()
            .pack("00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9", |name| {
                (name == "instance_url").then_some("https://na1.salesforce.com")
            })
            .unwrap();
        assert_eq!(
            packed,
            "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9 https://na1.salesforce.com"
        );
    }

    #[test]
    fn a_missing_trailing_field_leaves_the_bare_token() {
        let format = PackFormat::salesforce();
        let packed = format.pack("abc", |_| None).unwrap();
        assert_eq!(packed, "abc");
        assert_eq!(format.unpack(&packed).unwrap().instance_url(), None);
    }

    #[test]
    fn a_missing_middle_field_keeps_later_fields_in_place() {
        let format = PackFormat::new().field("a").field("b").separator('|');
        let packed = format.pack("tok", |n| (n == "b").then_some("B")).unwrap();
        assert_eq!(packed, "tok||B");
        let token = format.unpack(&packed).unwrap();
        assert_eq!(token.field("a"), None);
        assert_eq!(token.field("b"), Some("B"));
    }

    #[test]
    fn separators_inside_values_are_refused() {
        let format = PackFormat::salesforce();
        assert_eq!(
            format.pack("a b", |_| Some("x")),
            Err(PackError::SeparatorInAccessToken)
        );
        assert_eq!(
            format.pack("ab", |_| Some("x y")),
            Err(PackError::SeparatorInField("instance_url".into()))
        );
    }

    #[test]
    fn tokens_over_the_maximum_are_refused() {
        let format = PackFormat::salesforce().max_len(10);
        assert_eq!(
            format.pack("123456", |n| (n == "instance_url").then_some("7890")),
            Err(PackError::TooLong { len: 11, max: 10 })
        );
        assert!(format
            .pack("12345", |n| (n == "instance_url").then_some("7890"))
            .is_ok());
    }

    #[test]
    fn unpacking_foreign_tokens_fails_cleanly() {
        let format = PackFormat::salesforce();
        assert_eq!(format.unpack(""), Err(UnpackError::EmptyAccessToken));
        assert_eq!(format.unpack(" x"), Err(UnpackError::EmptyAccessToken));
        assert_eq!(
            format.unpack("a b c d"),
            Err(UnpackError::TooManyParts { expected: 2 })
        );
    }

    #[test]
    fn strings_pack_never_writes_do_not_unpack() {
        // Found by the unpack fuzz target's exact-inverse oracle: "tok " unpacked to the token
        // "tok", which packs to "tok"; and a token over the maximum unpacked but never packs.
        let format = PackFormat::salesforce();
        assert_eq!(format.unpack("tok "), Err(UnpackError::TrailingEmptyField));
        let two = PackFormat::new().field("a").field("b").separator('|');
        assert_eq!(two.unpack("tok|x|"), Err(UnpackError::TrailingEmptyField));
        assert!(two.unpack("tok||x").is_ok());
        assert_eq!(
            format.max_len(4).unpack("tok x"),
            Err(UnpackError::TooLong { len: 5, max: 4 })
        );
    }

    #[test]
    fn api_instance_url_is_packed_after_instance_url_and_unpacked() {
        let format = PackFormat::salesforce();
        let packed = format
            .pack("eyJ.eyJ.sig", |name| match name {
                "instance_url" => Some("https://acme.my.salesforce.com"),
                "api_instance_url" => Some("https://api.salesforce.com"),
                _ => None,
            })
            .unwrap();
        assert_eq!(
            packed,
            "eyJ.eyJ.sig https://acme.my.salesforce.com https://api.salesforce.com"
        );
        let token = PackedToken::unpack(&packed).unwrap();
        assert_eq!(token.access_token(), "eyJ.eyJ.sig");
        assert_eq!(token.instance_url(), Some("https://acme.my.salesforce.com"));
        assert_eq!(token.api_instance_url(), Some("https://api.salesforce.com"));
    }

    #[test]
    fn tokens_packed_before_api_instance_url_still_unpack() {
        // What the bridge wrote before it packed api_instance_url: token, space, instance_url.
        let token = PackedToken::unpack("00Dx0!AR8AQ https://na1.salesforce.com").unwrap();
        assert_eq!(token.access_token(), "00Dx0!AR8AQ");
        assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));
        assert_eq!(token.api_instance_url(), None);
        // And an answer without api_instance_url still packs to exactly that.
        let packed = PackFormat::salesforce()
            .pack("00Dx0!AR8AQ", |name| {
                (name == "instance_url").then_some("https://na1.salesforce.com")
            })
            .unwrap();
        assert_eq!(packed, "00Dx0!AR8AQ https://na1.salesforce.com");
    }

    #[test]
    fn debug_redacts_the_access_token() {
        let token = PackedToken::unpack("secret-token https://x").unwrap();
        assert!(!format!("{token:?}").contains("secret-token"));
    }

    proptest! {
        #[test]
        fn unpack_is_the_exact_inverse_of_pack(
            sep in prop::sample::select(vec![' ', '|', ':', '\u{1f511}']),
            token in ".{1,60}",
            values in prop::collection::vec(prop::option::of(".{0,40}"), 0..4),
        ) {
            prop_assume!(!token.contains(sep));
            prop_assume!(values.iter().flatten().all(|v| !v.contains(sep)));
            let mut format = PackFormat::new().separator(sep).max_len(usize::MAX);
            let names: Vec<String> = (0..values.len()).map(|i| format!("f{i}")).collect();
            for name in &names {
                format = format.field(name.clone());
            }
            let packed = format
                .pack(&token, |n| {
                    let i = names.iter().position(|x| x == n).unwrap();
                    values[i].as_deref()
                })
                .unwrap();
            let unpacked = format.unpack(&packed).unwrap();
            prop_assert_eq!(unpacked.access_token(), token.as_str());
            for (name, value) in names.iter().zip(&values) {
                let expected = value.as_deref().filter(|v| !v.is_empty());
                prop_assert_eq!(unpacked.field(name), expected);
            }
        }

        #[test]
        fn salesforce_unpack_is_the_exact_inverse_of_pack(
            token in "[^ ]{1,60}",
            instance_url in prop::option::of("[^ ]{0,40}"),
            api_instance_url in prop::option::of("[^ ]{0,40}"),
        ) {
            let format = PackFormat::salesforce();
            let packed = format
                .pack(&token, |name| match name {
                    "instance_url" => instance_url.as_deref(),
                    "api_instance_url" => api_instance_url.as_deref(),
                    _ => None,
                })
                .unwrap();
            let unpacked = PackedToken::unpack(&packed).unwrap();
            prop_assert_eq!(unpacked.access_token(), token.as_str());
            prop_assert_eq!(unpacked.instance_url(), instance_url.as_deref().filter(|v| !v.is_empty()));
            prop_assert_eq!(
                unpacked.api_instance_url(),
                api_instance_url.as_deref().filter(|v| !v.is_empty())
            );
            // And back: the unpacked token packs to the same string.
            let repacked = format.pack(unpacked.access_token(), |name| unpacked.field(name)).unwrap();
            prop_assert_eq!(repacked, packed);
        }

        #[test]
        fn unpack_never_panics(sep in any::<char>(), input in ".{0,200}") {
            let _ = PackFormat::salesforce().separator(sep).field("x").unpack(&input);
        }
    }
}

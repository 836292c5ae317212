//! An upstream answer's top-level fields, read without building a JSON tree.
//!
//! The rewrite looks at a handful of top-level fields (`access_token`, `expires_in`, `error`,
//! the fields to pack) and passes everything else through untouched. So a JSON answer is read
//! as a flat list of `(name, value)` pairs that borrow from the body: strings without escapes
//! (nearly all of them: tokens, URLs, scopes) are slices of the body; every other value is kept
//! as its raw JSON text and copied back verbatim, so the rewrite never re-serializes what it did
//! not change.
//!
//! A raw value (a number, `true`, an array, an object) is also read once as a
//! `serde_json::Value`, kept beside its text for the rules to look at, so that what serde_json refuses anywhere (a `\u` escape
//! that stands for no character such as `\ud800`, a number out of range such as `1e400`) is
//! refused here too: relayed, it would be JSON that a strict reader does not accept. A number
//! costs no allocation, and Salesforce's answers hold strings only.

use std::borrow::Cow;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::oauth::form_decode;

/// One field's value.
#[derive(Clone, Debug)]
pub(crate) enum Field<'a> {
    /// A JSON string that needs no escape (from the body, where it had none): written between
    /// quotes as it is.
    Clean(&'a str),
    /// Any other JSON string, unescaped.
    Str(String),
    /// Any other JSON value: the text the upstream wrote (what goes back out) and the value
    /// it reads as (what the rules look at).
    Raw(&'a RawValue, Value),
    /// A value the rewrite made or lifted.
    Value(Value),
}

impl Field<'_> {
    /// The value, unless this is a string of the body.
    pub(crate) fn value(&self) -> Option<&Value> {
        match self {
            Field::Raw(_, value) | Field::Value(value) => Some(value),
            Field::Clean(_) | Field::Str(_) => None,
        }
    }

    /// The string, when this is a JSON string.
    pub(crate) fn as_str(&self) -> Option<&str> {
        match self {
            Field::Clean(text) => Some(text),
            Field::Str(text) => Some(text),
            _ => self.value().and_then(Value::as_str),
        }
    }

    /// Whether this is JSON `null`.
    pub(crate) fn is_null(&self) -> bool {
        self.value().is_some_and(Value::is_null)
    }

    /// The JSON type name used by the diagnostics: `integer`, `float`, `string`, `null` or
    /// `other`.
    pub(crate) fn type_name(&self) -> &'static str {
        match self.value() {
            None | Some(Value::String(_)) => "string",
            Some(Value::Null) => "null",
            Some(Value::Number(n)) if n.is_u64() || n.is_i64() => "integer",
            Some(Value::Number(_)) => "float",
            Some(_) => "other",
        }
    }
}

/// At most this many top-level fields: a token answer has a dozen; a body of thousands of tiny
/// fields is not one (and would make every lookup slow).
pub(crate) const MAX_FIELDS: usize = 256;

/// An upstream answer's top-level fields, in the upstream's order (a repeated name keeps its
/// first position and its last value, as a JSON object read into a map would).
#[derive(Clone, Debug, Default)]
pub(crate) struct Answer<'a> {
    fields: Vec<(Cow<'a, str>, Field<'a>)>,
}

impl<'a> Answer<'a> {
    /// Reads a JSON object. `None` for anything else (an array, invalid JSON, trailing data).
    pub(crate) fn from_json(body: &'a [u8]) -> Option<Self> {
        // UTF-8 checked once for the whole body (reading from a `str`, serde_json does not
        // check each value again), and escapes looked for once: most answers have none, and
        // then every string is clean.
        let text = std::str::from_utf8(body).ok()?;
        let visitor = AnswerVisitor {
            escapes: text.as_bytes().contains(&b'\\'),
        };
        let mut reader = serde_json::Deserializer::from_str(text);
        let answer = serde::Deserializer::deserialize_map(&mut reader, visitor).ok()?;
        reader.end().ok()?;
        Some(answer)
    }

    /// Reads an `application/x-www-form-urlencoded` answer (GitHub without `Accept`). `None`
    /// when empty, or a name is empty, repeated or badly encoded.
    pub(crate) fn from_form(body: &[u8]) -> Option<Answer<'static>> {
        let mut answer = Answer::default();
        for pair in body.split(|b| *b == b'&').filter(|p| !p.is_empty()) {
            let (name, value) = match pair.iter().position(|b| *b == b'=') {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &[][..]),
            };
            let name = form_decode(name)?;
            let value = form_decode(value)?;
            if name.is_empty() || answer.get(&name).is_some() || answer.fields.len() == MAX_FIELDS {
                return None;
            }
            answer.fields.push((Cow::Owned(name), Field::Str(value)));
        }
        (!answer.fields.is_empty()).then_some(answer)
    }

    /// The field called `name`.
    pub(crate) fn get(&self, name: &str) -> Option<&Field<'a>> {
        self.fields
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value)
    }

    /// The string field called `name`.
    pub(crate) fn str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(Field::as_str)
    }

    /// Sets `name` to `value`, in place when present, else last.
    pub(crate) fn insert(&mut self, name: &'static str, value: Field<'a>) {
        self.set(Cow::Borrowed(name), value);
    }

    /// [`Answer::insert`] for any name. A borrowed name is written without an escape check:
    /// it is either one of ours or one the JSON reader borrowed, which it does only when the
    /// name had no escape.
    fn set(&mut self, name: Cow<'a, str>, value: Field<'a>) {
        match self.fields.iter_mut().find(|(key, _)| *key == name) {
            Some((_, slot)) => *slot = value,
            None => self.fields.push((name, value)),
        }
    }

    /// The field names, in order.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|(key, _)| key.as_ref())
    }

    /// Resolves a JSON pointer (RFC 6901); the first step is a top-level field.
    pub(crate) fn lookup(&self, pointer: &str) -> Option<Value> {
        let mut tokens = pointer.strip_prefix('/')?.split('/');
        let unescape = |t: &str| t.replace("~1", "/").replace("~0", "~");
        let field = self.get(&unescape(tokens.next()?))?;
        let Some(mut current) = field.value() else {
            // A string of the body: the pointer must end at it.
            return match tokens.next() {
                None => field.as_str().map(Value::from),
                Some(_) => None,
            };
        };
        for token in tokens {
            current = current.get(unescape(token))?;
        }
        Some(current.clone())
    }

    /// Writes the answer as compact JSON: strings escaped as `serde_json` escapes them (those
    /// that need none copied as they are), raw values verbatim.
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        out.push(b'{');
        for (i, (key, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            match key {
                Cow::Borrowed(clean) => write_clean(out, clean),
                Cow::Owned(key) => write_str(out, key),
            }
            out.push(b':');
            match value {
                Field::Clean(text) => write_clean(out, text),
                Field::Str(text) => write_str(out, text),
                Field::Raw(raw, _) => out.extend_from_slice(raw.get().as_bytes()),
                Field::Value(Value::String(text)) => write_str(out, text),
                Field::Value(other) => {
                    serde_json::to_writer(&mut *out, other).expect("a JSON value serializes");
                }
            }
        }
        out.push(b'}');
    }
}

/// A token answer `elapsed_secs` after it was first given: its integer `expires_in` lowered by
/// that much (not below 0), every other byte as written. A replayed answer must not promise
/// Alexa a lifetime the access token no longer has. `None` when the answer has no integer
/// `expires_in` (then it is replayed as it is).
pub(crate) fn aged(json: &[u8], elapsed_secs: u64) -> Option<Vec<u8>> {
    let mut answer = Answer::from_json(json)?;
    let expires_in = answer.get("expires_in")?.value()?.as_u64()?;
    answer.insert(
        "expires_in",
        Field::Value(Value::from(expires_in.saturating_sub(elapsed_secs))),
    );
    let mut out = Vec::with_capacity(json.len());
    answer.write_json(&mut out);
    Some(out)
}

/// A string known to need no escape.
fn write_clean(out: &mut Vec<u8>, text: &str) {
    out.push(b'"');
    out.extend_from_slice(text.as_bytes());
    out.push(b'"');
}

/// A JSON string: serde_json escapes only `"`, `\\` and control characters below U+0020.
pub(crate) fn write_str(out: &mut Vec<u8>, text: &str) {
    // Without a short cut, so that the check runs over many bytes at once.
    let needs_escape = text.bytes().fold(false, |found, b| {
        found | (b < 0x20) | (b == b'"') | (b == b'\\')
    });
    if needs_escape {
        serde_json::to_writer(&mut *out, text).expect("a string serializes");
    } else {
        write_clean(out, text);
    }
}

struct AnswerVisitor {
    /// Whether the body has a backslash anywhere: if not, no string has an escape.
    escapes: bool,
}

impl<'de> Visitor<'de> for AnswerVisitor {
    type Value = Answer<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Answer<'de>, M::Error> {
        let mut answer = Answer {
            // Room for a Salesforce answer plus the fields the rewrite adds.
            fields: Vec::with_capacity(map.size_hint().unwrap_or(12).min(32)),
        };
        while let Some(Name(name)) = map.next_key::<Name<'de>>()? {
            let raw: &'de RawValue = map.next_value()?;
            let text = raw.get();
            let value = match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                // Validated by serde_json: without a backslash, the text between the quotes
                // is the string itself.
                Some(inner) if !self.escapes || !inner.contains('\\') => Field::Clean(inner),
                Some(_) => {
                    Field::Str(serde_json::from_str(text).map_err(serde::de::Error::custom)?)
                }
                // Capturing a raw value checks its syntax only; reading it as a value also
                // refuses what serde_json refuses everywhere else: `\u` escapes that stand for
                // no character, numbers out of range. (A number allocates nothing; Salesforce's
                // answers hold strings only.)
                None => Field::Raw(
                    raw,
                    serde_json::from_str(text).map_err(serde::de::Error::custom)?,
                ),
            };
            answer.set(name, value);
            if answer.fields.len() > MAX_FIELDS {
                return Err(serde::de::Error::custom("too many fields"));
            }
        }
        Ok(answer)
    }
}

/// A field name, borrowed from the body unless it had an escape.
struct Name<'a>(Cow<'a, str>);

impl<'de> Deserialize<'de> for Name<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(NameVisitor)
    }
}

struct NameVisitor;

impl<'de> Visitor<'de> for NameVisitor {
    type Value = Name<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a field name")
    }

    fn visit_borrowed_str<E>(self, name: &'de str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Borrowed(name)))
    }

    fn visit_str<E>(self, name: &str) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(name.to_owned())))
    }

    fn visit_string<E>(self, name: String) -> Result<Name<'de>, E> {
        Ok(Name(Cow::Owned(name)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(answer: &Answer<'_>) -> String {
        let mut out = Vec::new();
        answer.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_strings_borrow_from_the_body_and_escaped_ones_are_unescaped() {
        let body = br#"{"a":"plain","b":"es\"caped\u00e9","c\u0041":1}"#;
        let answer = Answer::from_json(body).unwrap();
        assert!(matches!(answer.get("a"), Some(Field::Clean("plain"))));
        assert_eq!(answer.str("b"), Some("es\"caped\u{e9}"));
        assert!(matches!(answer.get("cA"), Some(Field::Raw(_, _))));
    }

    #[test]
    fn the_same_text_goes_back_out_and_means_the_same_json() {
        let body = r#"{ "access_token" : "a\"b\\c\u0001d\/e é ☃", "n": 1.5e3, "o": {"k": ["x\ny", 2]}, "z": null, "": "", "k\"ey": "v" }"#;
        let answer = Answer::from_json(body.as_bytes()).unwrap();
        let out = written(&answer);
        let reread: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(reread, serde_json::from_str::<Value>(body).unwrap());
        // Names keep the upstream's order; raw values are copied as written.
        assert!(
            out.starts_with(
                r#"{"access_token":"a\"b\\c\u0001d/e é ☃","n":1.5e3,"o":{"k": ["x\ny", 2]}"#
            ),
            "{out}"
        );
    }

    #[test]
    fn a_repeated_name_keeps_its_first_place_and_its_last_value() {
        let answer = Answer::from_json(br#"{"a":"1","b":2,"a":"3"}"#).unwrap();
        assert_eq!(written(&answer), r#"{"a":"3","b":2}"#);
    }

    #[test]
    fn anything_but_one_json_object_is_refused() {
        for body in [
            &b"[1]"[..],
            b"\"x\"",
            b"{\"a\":1} x",
            b"{\"a\":}",
            b"{\"a\":\"\x01\"}",
            b"{\"a\":\"\\x\"}",
            b"{\"a\":\"\xff\"}",
            b"{\"\xff\":1}",
            b"{\"a\":[\"\xff\"]}",
            b"{\"a\":\"\\ud800\"}",
            b"{\"a\":[\"\\ud800\"]}",
            b"{\"a\":{\"b\":\"\\udc00x\"}}",
            b"{\"a\":1e400}",
            b"{\"a\":[-1e999]}",
            b"",
        ] {
            assert!(Answer::from_json(body).is_none(), "{body:?}");
        }
    }

    #[test]
    fn type_names_follow_the_json() {
        let answer =
            Answer::from_json(br#"{"i":-3,"f":1.0,"e":1e3,"s":"3","n":null,"o":{}}"#).unwrap();
        let types: Vec<_> = ["i", "f", "e", "s", "n", "o"]
            .iter()
            .map(|n| answer.get(n).unwrap().type_name())
            .collect();
        assert_eq!(
            types,
            ["integer", "float", "float", "string", "null", "other"]
        );
    }

    #[test]
    fn pointers_reach_into_nested_values() {
        let answer =
            Answer::from_json(br#"{"ok":false,"authed_user":{"access_token":"xoxp","a/b":1}}"#)
                .unwrap();
        assert_eq!(answer.lookup("/ok"), Some(Value::Bool(false)));
        assert_eq!(
            answer.lookup("/authed_user/access_token"),
            Some(Value::from("xoxp"))
        );
        assert_eq!(answer.lookup("/authed_user/a~1b"), Some(Value::from(1)));
        assert_eq!(answer.lookup("/missing"), None);
        assert_eq!(answer.lookup("ok"), None);
    }

    #[test]
    fn form_answers_decode_and_refuse_repeats() {
        let answer = Answer::from_form(b"access_token=a%20b&scope=repo+user").unwrap();
        assert_eq!(answer.str("access_token"), Some("a b"));
        assert_eq!(answer.str("scope"), Some("repo user"));
        assert!(Answer::from_form(b"a=1&a=2").is_none());
        assert!(Answer::from_form(b"=1").is_none());
        assert!(Answer::from_form(b"").is_none());
    }

    #[test]
    fn answers_with_too_many_fields_are_refused() {
        let fields = |n: usize| (0..n).map(|i| format!("\"f{i}\":{i}")).collect::<Vec<_>>();
        let json = |n| format!("{{{}}}", fields(n).join(","));
        assert!(Answer::from_json(json(MAX_FIELDS).as_bytes()).is_some());
        assert!(Answer::from_json(json(MAX_FIELDS + 1).as_bytes()).is_none());
        let form = |n: usize| {
            (0..n)
                .map(|i| format!("f{i}=1"))
                .collect::<Vec<_>>()
                .join("&")
        };
        assert!(Answer::from_form(form(MAX_FIELDS).as_bytes()).is_some());
        assert!(Answer::from_form(form(MAX_FIELDS + 1).as_bytes()).is_none());
    }

    fn json_values() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,12}|[\"\\\\/\u{0}-\u{1f}a]{0,6}".prop_map(Value::from),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
                prop::collection::btree_map("\\PC{0,6}", inner, 0..4)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    use proptest::prelude::*;

    proptest! {
        #[test]
        fn any_object_reads_and_writes_back_to_the_same_json(
            fields in prop::collection::vec(("\\PC{0,8}", json_values()), 0..8),
            pretty in any::<bool>(),
        ) {
            let object = Value::Object(fields.into_iter().collect());
            let body = if pretty {
                serde_json::to_vec_pretty(&object).unwrap()
            } else {
                serde_json::to_vec(&object).unwrap()
            };
            let answer = Answer::from_json(&body).expect("serde_json's own output reads");
            let reread: Value = serde_json::from_str(&written(&answer)).unwrap();
            // Compared with serde_json's reading of the same text: without its
            // `float_roundtrip` feature, a float written and read back can differ in the
            // last digit, and the raw text is what goes out.
            let expected: Value = serde_json::from_slice(&body).unwrap();
            prop_assert_eq!(reread, expected);
        }

        #[test]
        fn a_body_reads_exactly_when_serde_json_reads_it_as_an_object(
            fields in prop::collection::vec(("[a-z]{0,3}", json_values()), 0..4),
            at in any::<prop::sample::Index>(),
            byte in any::<u8>(),
            mutate in any::<bool>(),
        ) {
            let mut body = serde_json::to_vec(&Value::Object(fields.into_iter().collect())).unwrap();
            if mutate {
                let i = at.index(body.len() + 1);
                body.insert(i, byte);
            }
            let serde = serde_json::from_slice::<Value>(&body);
            let ours = Answer::from_json(&body);
            prop_assert_eq!(ours.is_some(), matches!(serde, Ok(Value::Object(_))), "{:?}", String::from_utf8_lossy(&body));
            if let (Some(ours), Ok(serde)) = (ours, serde) {
                let reread: Value = serde_json::from_str(&written(&ours)).unwrap();
                prop_assert_eq!(reread, serde);
            }
        }
    }
    #[test]
    fn an_aged_answer_lowers_only_expires_in() {
        let json =
            br#"{"access_token":"a b","expires_in":5400,"refresh_token":"r","n":{"expires_in":9}}"#;
        let aged = aged(json, 250).unwrap();
        assert_eq!(
            aged,
            br#"{"access_token":"a b","expires_in":5150,"refresh_token":"r","n":{"expires_in":9}}"#
        );
        assert_eq!(
            super::aged(br#"{"expires_in":100}"#, 250).unwrap(),
            br#"{"expires_in":0}"#
        );
        assert!(super::aged(br#"{"access_token":"a"}"#, 10).is_none());
    }
}

//! The pure rewrite of one upstream answer into what Alexa needs.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderMap, HeaderValue, StatusCode};
use serde_json::Value;

use super::answer::{Answer, Field};
use crate::oauth::{GrantType, TokenRequest};
use crate::outcome::AnswerKind;
use crate::provider::{AnswerFormat, ErrorMarker, ExpiresIn, ResponsePolicy};
use crate::{ErrorCode, OAuthError};

/// What the bridge did to `expires_in`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiresInAction {
    /// The upstream's integer was kept.
    Kept,
    /// The upstream's string (or fractional number) was converted to an integer.
    Converted,
    /// The upstream gave none; the configured default was injected.
    Injected,
    /// The upstream's value was unusable (negative, not a number); the default replaced it.
    Replaced,
    /// The value was clamped to the configured maximum.
    Clamped,
    /// The upstream gave none (or an unusable one), and the access token is a JWT: its `exp`
    /// claim gave the lifetime (never below Alexa's 360 s).
    FromJwt,
}

/// What the response layer saw and did, attached to every answer's extensions for an observer
/// such as [`DiagnosticsLayer`](crate::diagnostics::DiagnosticsLayer), beside the
/// [`Outcome`](crate::diagnostics::Outcome) it decided. Filled cheaply on every answer (a
/// header handle, one string of names); it holds no token nor secret.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RewriteReport {
    /// The grant type of the request, when the request layer parsed one.
    pub grant_type: Option<GrantType>,
    /// The upstream's HTTP status (`None` when the upstream was never heard).
    pub upstream_status: Option<StatusCode>,
    /// What the upstream answered; `None` when it was never heard.
    pub answer: Option<AnswerKind>,
    /// What happened to `expires_in`, for a success.
    pub expires_in: Option<ExpiresInAction>,
    /// The `expires_in` answered, for a success.
    pub expires_in_secs: Option<u64>,
    /// Whether fields were packed into the access token.
    pub packed: bool,
    /// Whether Alexa's refresh token was echoed because the upstream omitted one.
    pub refresh_token_echoed: bool,
    /// The upstream's `error` code, when it sent one.
    pub upstream_error: Option<String>,
    /// The `error` code answered to Alexa, for an error.
    pub answered_error: Option<ErrorCode>,
    upstream_content_type: Option<HeaderValue>,
    /// The names of the answer's top-level fields, comma-separated.
    answer_fields: String,
    /// The JSON type of the upstream's `expires_in`: `integer`, `float`, `string`, `null`,
    /// `other`, or `absent`; `None` when the answer could not be read.
    pub expires_in_type: Option<&'static str>,
    /// How long the upstream took to answer (until its whole body was read).
    pub upstream_latency: Option<std::time::Duration>,
}

impl RewriteReport {
    /// The upstream's `Content-Type` (media type only, at most 64 characters).
    pub fn upstream_content_type(&self) -> Option<String> {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, self.upstream_content_type.clone()?);
        crate::content_media_type(&headers).map(|v| v.chars().take(64).collect())
    }

    /// The names of the top-level fields of the upstream's answer (at most 32, each cut to 40
    /// characters).
    pub fn answer_fields(&self) -> impl Iterator<Item = &str> {
        self.answer_fields.split(',').filter(|n| !n.is_empty())
    }

    pub(crate) fn new(upstream_status: Option<StatusCode>) -> Self {
        RewriteReport {
            grant_type: None,
            upstream_status,
            answer: None,
            expires_in: None,
            expires_in_secs: None,
            packed: false,
            refresh_token_echoed: false,
            upstream_error: None,
            answered_error: None,
            upstream_content_type: None,
            answer_fields: String::new(),
            expires_in_type: None,
            upstream_latency: None,
        }
    }
}

/// Rewrites one upstream answer. `Ok` is the JSON body of a 200; `Err` the error to answer.
pub(crate) fn rewrite(
    status: StatusCode,
    headers: &HeaderMap,
    body: &[u8],
    request: Option<&TokenRequest>,
    policy: &ResponsePolicy,
    report: &mut RewriteReport,
) -> Result<Bytes, OAuthError> {
    let (shape, answer) = read_answer(headers, body, policy.answer_format);
    report.answer = Some(shape);
    // Cheap on every answer: a handle on the header, and the names in one string.
    report.upstream_content_type = headers.get(CONTENT_TYPE).cloned();
    if let Some(answer) = &answer {
        let mut names = String::with_capacity(128);
        for name in answer.names().take(32) {
            if !names.is_empty() {
                names.push(',');
            }
            // A field name is short ASCII without a comma: copied whole, not char by char.
            if name.len() <= 40 && !name.contains(',') {
                names.push_str(name);
            } else {
                names.extend(name.chars().filter(|c| *c != ',').take(40));
            }
        }
        report.answer_fields = names;
        report.expires_in_type = Some(answer.get("expires_in").map_or("absent", Field::type_name));
    }
    let Some(mut object) = answer else {
        return Err(fault(status, shape_name(shape)));
    };

    let marked = status.is_success()
        && policy
            .error_markers
            .iter()
            .any(|marker| marker_matches(marker, &object));
    let upstream_error = object
        .str("error")
        .filter(|e| !e.is_empty())
        .map(str::to_owned);
    report.upstream_error = upstream_error.clone();
    if marked {
        report.answer = Some(if object.get("ok").is_some() {
            AnswerKind::OkFalse
        } else {
            AnswerKind::ErrorIn200
        });
    }

    if marked || !status.is_success() {
        let relayable = marked || matches!(status.as_u16(), 400 | 401);
        return match upstream_error {
            Some(code) if relayable => {
                let status = if status.is_success() {
                    StatusCode::BAD_REQUEST
                } else {
                    status
                };
                let mapping = policy.error_codes.iter().find(|m| m.upstream == code);
                let (mapped, status) = match mapping {
                    Some(m) => (m.code.clone(), m.status.unwrap_or(status)),
                    None => (ErrorCode::new(code.clone()), status),
                };
                // Cleaning a code to RFC 6749's characters must not make one that unlinks:
                // `invalid_"grant` is not the upstream saying `invalid_grant`.
                if mapping.is_none() && mapped.unlinks() && mapped.as_str() != code {
                    return Err(fault(status, "an error code outside RFC 6749's characters"));
                }
                let mut error = OAuthError::new(mapped, status);
                if let Some(description) = object.str("error_description") {
                    error = error.with_description(scrub(description, request));
                } else if mapping.is_some() {
                    // Slack sends only a code: say which, since the answered code replaced it.
                    let upstream = ErrorCode::new(code);
                    error = error.with_description(format!("upstream error {upstream}"));
                }
                Err(error)
            }
            _ if marked => Err(OAuthError::server_error(
                "upstream signalled an error without an error code in a 2xx answer",
            )),
            _ => Err(fault(status, shape_name(shape))),
        };
    }

    if !has_access_token(&object) {
        if let Some(pointer) = &policy.access_token_pointer {
            lift_nested_token(&mut object, pointer);
        }
    }
    if !has_access_token(&object) {
        return Err(OAuthError::server_error(format!(
            "upstream answered HTTP {} without an access_token",
            status.as_u16()
        )));
    }

    let (mut upstream_secs, mut action) = read_expires_in(object.get("expires_in"));
    if upstream_secs.is_none() {
        // An upstream `expires_in` wins: the server said how long the token lives. Without one,
        // a JWT's own `exp` says it better than the preset's constant.
        let token = object.str("access_token").unwrap_or_default();
        if let Some(secs) = super::jwt::expires_in_from_jwt(token, unix_now) {
            upstream_secs = Some(secs);
            action = ExpiresInAction::FromJwt;
        }
    }
    let secs = policy.expires_in.resolve(upstream_secs);
    if upstream_secs.is_some_and(|up| up != secs) {
        action = ExpiresInAction::Clamped;
    }
    if secs < ExpiresIn::ALEXA_MINIMUM_SECS {
        tracing::warn!(
            target: "account_link_bridge::token",
            expires_in = secs,
            "access token lifetime is below the 360 s Alexa requires"
        );
    }
    object.insert("expires_in", Field::Value(Value::from(secs)));
    report.expires_in = Some(action);
    report.expires_in_secs = Some(secs);

    if !object.str("token_type").is_some_and(|t| !t.is_empty()) {
        object.insert("token_type", Field::Clean("Bearer"));
    }

    if let Some(request) = request {
        let answered = object.str("refresh_token").is_some_and(|t| !t.is_empty());
        if *request.grant_type() == GrantType::RefreshToken && !answered {
            if let Some(sent) = request.refresh_token() {
                object.insert("refresh_token", Field::Str(sent.to_owned()));
                report.refresh_token_echoed = true;
            }
        }
    }

    if !policy.pack.is_empty() {
        let token = object.str("access_token").unwrap_or_default();
        let packed = policy
            .pack
            .pack(token, |name| object.str(name))
            .map_err(|e| OAuthError::server_error(format!("cannot pack the access token: {e}")))?;
        object.insert("access_token", Field::Str(packed));
        report.packed = true;
    }

    // Sized for the answer plus what the rewrite adds (expires_in, token_type, packed fields),
    // so the JSON is written without growing the buffer several times.
    let mut json = Vec::with_capacity(body.len() + 128);
    object.write_json(&mut json);
    Ok(Bytes::from(json))
}

/// Seconds since the Unix epoch (0 for a clock set before it).
fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// A fault on the path: never `invalid_grant`/`invalid_client`, which would unlink the user.
fn fault(status: StatusCode, shape: &str) -> OAuthError {
    let description = format!("upstream answered HTTP {} with {shape}", status.as_u16());
    match status.as_u16() {
        429 | 503 => {
            OAuthError::temporarily_unavailable(StatusCode::SERVICE_UNAVAILABLE, description)
        }
        504 => OAuthError::temporarily_unavailable(StatusCode::GATEWAY_TIMEOUT, description),
        _ => OAuthError::server_error(description),
    }
}

fn shape_name(shape: AnswerKind) -> &'static str {
    match shape {
        AnswerKind::Json => "JSON that is not an RFC 6749 answer",
        AnswerKind::Form => "a form that is not an RFC 6749 answer",
        AnswerKind::Html => "an HTML page",
        AnswerKind::ErrorIn200 | AnswerKind::OkFalse => "an error inside a 2xx answer",
        _ => "a body that is neither JSON nor a form",
    }
}

fn has_access_token(answer: &Answer<'_>) -> bool {
    answer.str("access_token").is_some_and(|t| !t.is_empty())
}

fn read_answer<'a>(
    headers: &HeaderMap,
    body: &'a [u8],
    format: AnswerFormat,
) -> (AnswerKind, Option<Answer<'a>>) {
    // Compared without case and without a lowercased copy: media types are ASCII.
    let media = crate::content_media_type(headers).unwrap_or("");
    let first = body.iter().find(|b| !b.is_ascii_whitespace()).copied();
    let declared_json = media.eq_ignore_ascii_case("application/json")
        || media
            .len()
            .checked_sub(5)
            .and_then(|i| media.get(i..))
            .is_some_and(|suffix| suffix.eq_ignore_ascii_case("+json"));
    let declared_form = media.eq_ignore_ascii_case("application/x-www-form-urlencoded");
    if media.eq_ignore_ascii_case("text/html") || first == Some(b'<') {
        return (AnswerKind::Html, None);
    }
    if format != AnswerFormat::Form && (declared_json || first == Some(b'{')) {
        return match Answer::from_json(body) {
            Some(answer) => (AnswerKind::Json, Some(answer)),
            None => (AnswerKind::Unreadable, None),
        };
    }
    let form_allowed = match format {
        AnswerFormat::Json => false,
        AnswerFormat::Form => first.is_some(),
        AnswerFormat::Either => declared_form,
    };
    if form_allowed {
        if let Some(answer) = Answer::from_form(body) {
            return (AnswerKind::Form, Some(answer));
        }
    }
    (AnswerKind::Unreadable, None)
}

fn marker_matches(marker: &ErrorMarker, answer: &Answer<'_>) -> bool {
    match marker {
        ErrorMarker::Field(name) => answer.get(name.as_ref()).is_some_and(|v| !v.is_null()),
        ErrorMarker::Equals { pointer, value } => answer.lookup(pointer).as_ref() == Some(value),
    }
}

/// Copies the token at `pointer` to the top level, with the `expires_in` and `refresh_token`
/// of the object holding it when the top level has none (Slack's `authed_user`).
fn lift_nested_token(answer: &mut Answer<'_>, pointer: &str) {
    let Some(Value::String(token)) = answer.lookup(pointer) else {
        return;
    };
    let mut lifted = vec![("access_token", Value::String(token))];
    let holder = pointer
        .rsplit_once('/')
        .and_then(|(parent, _)| match parent {
            "" => None,
            parent => answer.lookup(parent),
        });
    if let Some(Value::Object(holder)) = holder {
        for name in ["expires_in", "refresh_token"] {
            let top_has_none = answer.get(name).map_or(true, Field::is_null);
            match holder.get(name) {
                Some(value) if top_has_none && !value.is_null() => {
                    lifted.push((name, value.clone()));
                }
                _ => {}
            }
        }
    }
    for (name, value) in lifted {
        answer.insert(name, Field::Value(value));
    }
}

/// Reads `expires_in`: an integer is kept, a string of digits or a whole float is converted.
fn read_expires_in(field: Option<&Field<'_>>) -> (Option<u64>, ExpiresInAction) {
    let Some(field) = field else {
        return (None, ExpiresInAction::Injected);
    };
    if let Some(text) = field.as_str() {
        return match text.trim().parse::<u64>() {
            Ok(secs) => (Some(secs), ExpiresInAction::Converted),
            Err(_) => (None, ExpiresInAction::Replaced),
        };
    }
    match field.value() {
        Some(Value::Null) => (None, ExpiresInAction::Injected),
        Some(Value::Number(n)) => match (n.as_u64(), n.as_f64()) {
            (Some(secs), _) => (Some(secs), ExpiresInAction::Kept),
            (None, Some(f)) if f.is_finite() && f >= 0.0 && f <= u64::MAX as f64 => {
                (Some(f as u64), ExpiresInAction::Converted)
            }
            _ => (None, ExpiresInAction::Replaced),
        },
        _ => (None, ExpiresInAction::Replaced),
    }
}

/// Removes every secret of the request from an upstream description, and bounds its length.
fn scrub(description: &str, request: Option<&TokenRequest>) -> String {
    let mut text: Cow<'_, str> = Cow::Borrowed(description);
    if let Some(request) = request {
        for secret in request.secrets().filter(|s| s.len() >= 4) {
            if text.contains(secret) {
                text = Cow::Owned(text.replace(secret, "[redacted]"));
            }
        }
    }
    text.chars().take(200).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Provider;
    use http::header::CONTENT_TYPE;
    use http::HeaderValue;

    fn json() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        h
    }

    fn refresh_request() -> TokenRequest {
        TokenRequest::parse(
            &HeaderMap::new(),
            b"grant_type=refresh_token&refresh_token=alexas-refresh-token&client_id=a&client_secret=topsecret",
        )
        .unwrap()
    }

    fn run(
        provider: &Provider,
        status: u16,
        headers: &HeaderMap,
        body: &str,
        request: Option<&TokenRequest>,
    ) -> Result<Value, OAuthError> {
        let mut report = RewriteReport::new(None);
        rewrite(
            StatusCode::from_u16(status).unwrap(),
            headers,
            body.as_bytes(),
            request,
            &provider.response,
            &mut report,
        )
        .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn fields_the_rewrite_does_not_touch_go_out_with_the_same_meaning() {
        let answer = r#"{"access_token":"a\"b\\c\u0001d\/e é ☃","n":1.5,"i":-3,"t":true,"z":null,"o":{"k":["x\ny",2]},"":"","k\"ey":"v","token_type":"mac"}"#;
        let out = run(&Provider::generic(), 200, &json(), answer, None).unwrap();
        let mut expected: Value = serde_json::from_str(answer).unwrap();
        expected["expires_in"] = Value::from(3600);
        assert_eq!(out, expected);
    }

    const SALESFORCE: &str = r#"{"access_token":"00Dx0!AR8AQ","instance_url":"https://na1.salesforce.com","id":"https://login.salesforce.com/id/00Dx0/005x0","token_type":"Bearer","issued_at":"1278448101416","signature":"CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg="}"#;

    #[test]
    fn a_junk_code_that_cleans_to_an_unlinking_one_is_a_fault_not_an_unlink() {
        // Found while writing tests/never_panic.rs: cleaning `invalid_"grant` to RFC 6749's
        // characters gave `invalid_grant`, which makes Alexa unlink the user.
        // JSON escapes: a quote, a newline, an `é`.
        for code in [
            r#"invalid_\"grant"#,
            r"invalid_client\n",
            r"inv\u00e9alid_grant",
        ] {
            let body = format!(r#"{{"error":"{code}"}}"#);
            let error = run(&Provider::generic(), 400, &json(), &body, None).unwrap_err();
            assert_eq!(error.code(), &ErrorCode::SERVER_ERROR, "{code}");
            assert_eq!(error.status(), StatusCode::BAD_GATEWAY);
        }
        let exact = run(
            &Provider::generic(),
            400,
            &json(),
            r#"{"error":"invalid_grant"}"#,
            None,
        );
        assert_eq!(exact.unwrap_err().code(), &ErrorCode::INVALID_GRANT);
    }

    #[test]
    fn salesforce_answer_is_packed_with_expires_in_injected() {
        let out = run(&Provider::salesforce(), 200, &json(), SALESFORCE, None).unwrap();
        assert_eq!(
            out["access_token"],
            "00Dx0!AR8AQ https://na1.salesforce.com"
        );
        assert_eq!(out["expires_in"], 5400);
        assert_eq!(out["token_type"], "Bearer");
        assert_eq!(out["issued_at"], "1278448101416");
    }

    #[test]
    fn refresh_without_refresh_token_echoes_the_one_sent() {
        let request = refresh_request();
        let out = run(
            &Provider::salesforce(),
            200,
            &json(),
            SALESFORCE,
            Some(&request),
        )
        .unwrap();
        assert_eq!(out["refresh_token"], "alexas-refresh-token");
        let rotated = SALESFORCE.replace("\"id\"", "\"refresh_token\":\"new\",\"id\"");
        let out = run(
            &Provider::salesforce(),
            200,
            &json(),
            &rotated,
            Some(&request),
        )
        .unwrap();
        assert_eq!(out["refresh_token"], "new");
    }

    /// A Salesforce JWT-format answer whose access token expires `secs_left` from now.
    fn salesforce_jwt_answer(payload_exp: String) -> String {
        let token = super::super::jwt::tests::jwt(&format!(r#"{{"sub":"005x0",{payload_exp}}}"#));
        format!(
            r#"{{"access_token":"{token}","instance_url":"https://acme.my.salesforce.com","api_instance_url":"https://api.salesforce.com","token_type":"Bearer"}}"#
        )
    }

    #[test]
    fn a_jwt_access_token_s_exp_gives_expires_in() {
        let exp = unix_now() + 7200;
        let body = salesforce_jwt_answer(format!(r#""exp":{exp}"#));
        let mut report = RewriteReport::new(None);
        let out = rewrite(
            StatusCode::OK,
            &json(),
            body.as_bytes(),
            None,
            &Provider::salesforce().response,
            &mut report,
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        let secs = out["expires_in"].as_u64().unwrap();
        // The clock moved between making the token and reading it: a few seconds at most.
        assert!((7190..=7200).contains(&secs), "{secs}");
        assert_eq!(report.expires_in, Some(ExpiresInAction::FromJwt));
        let token = crate::PackedToken::unpack(out["access_token"].as_str().unwrap()).unwrap();
        assert_eq!(token.instance_url(), Some("https://acme.my.salesforce.com"));
        assert_eq!(token.api_instance_url(), Some("https://api.salesforce.com"));
    }

    #[test]
    fn a_jwt_expiring_within_360_s_or_already_expired_is_answered_360() {
        for exp in [unix_now() + 100, unix_now().saturating_sub(600)] {
            let body = salesforce_jwt_answer(format!(r#""exp":{exp}"#));
            let out = run(&Provider::salesforce(), 200, &json(), &body, None).unwrap();
            assert_eq!(out["expires_in"], 360, "exp {exp}");
        }
    }

    #[test]
    fn a_malformed_jwt_or_one_without_exp_falls_back_to_the_preset_constant() {
        for claims in [r#""iat":1"#, r#""exp":"tomorrow""#] {
            let body = salesforce_jwt_answer(claims.to_string());
            let out = run(&Provider::salesforce(), 200, &json(), &body, None).unwrap();
            assert_eq!(out["expires_in"], 5400, "{claims}");
        }
        let broken =
            r#"{"access_token":"eyJhbGciOiJSUzI1NiJ9.!!!.sig","instance_url":"https://x"}"#;
        let out = run(&Provider::salesforce(), 200, &json(), broken, None).unwrap();
        assert_eq!(out["expires_in"], 5400);
    }

    #[test]
    fn an_upstream_expires_in_wins_over_the_jwt_exp() {
        let exp = unix_now() + 7200;
        let body = salesforce_jwt_answer(format!(r#""exp":{exp}"#))
            .replace(r#""token_type""#, r#""expires_in":1800,"token_type""#);
        let out = run(&Provider::salesforce(), 200, &json(), &body, None).unwrap();
        assert_eq!(out["expires_in"], 1800);
    }

    #[test]
    fn the_jwt_exp_is_clamped_to_the_maximum_like_any_lifetime() {
        let p = Provider::generic().expires_in(ExpiresIn::default_secs(3600).max_secs(1000));
        let token = super::super::jwt::tests::jwt(&format!(r#"{{"exp":{}}}"#, unix_now() + 7200));
        let body = format!(r#"{{"access_token":"{token}"}}"#);
        let out = run(&p, 200, &json(), &body, None).unwrap();
        assert_eq!(out["expires_in"], 1000);
    }

    #[test]
    fn a_rotated_refresh_token_passes_through_untouched_and_is_not_echoed() {
        let request = refresh_request();
        let rotated = SALESFORCE.replace("\"id\"", "\"refresh_token\":\"5Aep861-rotated\",\"id\"");
        let mut report = RewriteReport::new(None);
        let out = rewrite(
            StatusCode::OK,
            &json(),
            rotated.as_bytes(),
            Some(&request),
            &Provider::salesforce().response,
            &mut report,
        )
        .unwrap();
        let out: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(out["refresh_token"], "5Aep861-rotated");
        assert!(!report.refresh_token_echoed);
    }

    #[test]
    fn string_and_float_expires_in_become_integers() {
        let p = Provider::generic();
        for (given, expected) in [
            (r#""3599""#, 3599),
            ("3599.0", 3599),
            ("7200", 7200),
            (r#""soon""#, 3600),
            ("-5", 3600),
            ("null", 3600),
        ] {
            let body = format!(r#"{{"access_token":"t","expires_in":{given}}}"#);
            let out = run(&p, 200, &json(), &body, None).unwrap();
            assert_eq!(out["expires_in"], expected, "{given}");
        }
    }

    #[test]
    fn expires_in_is_clamped_to_the_maximum() {
        let p = Provider::generic().expires_in(ExpiresIn::default_secs(3600).max_secs(1800));
        let out = run(
            &p,
            200,
            &json(),
            r#"{"access_token":"t","expires_in":86400}"#,
            None,
        )
        .unwrap();
        assert_eq!(out["expires_in"], 1800);
    }

    #[test]
    fn upstream_rfc_errors_pass_through_with_their_status() {
        let e = run(
            &Provider::salesforce(),
            400,
            &json(),
            r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), &ErrorCode::INVALID_GRANT);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.description(), Some("expired access/refresh token"));
        let e = run(
            &Provider::generic(),
            401,
            &json(),
            r#"{"error":"invalid_client"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn faults_never_answer_invalid_grant() {
        let mut html = HeaderMap::new();
        html.insert(CONTENT_TYPE, HeaderValue::from_static("text/html"));
        for (status, headers, body, expected) in [
            (500, &html, "<html>oops</html>", 502),
            (403, &json(), r#"{"error":"invalid_grant"}"#, 502),
            (503, &json(), r#"{"error":"invalid_client"}"#, 503),
            (429, &HeaderMap::new(), "slow down", 503),
            (504, &HeaderMap::new(), "", 504),
            (200, &html, "<html>login</html>", 502),
            (200, &json(), "{not json", 502),
            (200, &json(), r#"{"token":"x"}"#, 502),
            (400, &html, "<h1>Bad Request</h1>", 502),
        ] {
            let e = run(&Provider::generic(), status, headers, body, None).unwrap_err();
            assert!(!e.code().unlinks(), "{status} {body}");
            assert_eq!(e.status().as_u16(), expected, "{status} {body}");
            assert!(e.description().unwrap().contains(&status.to_string()) || status == 200);
        }
    }

    #[test]
    fn error_in_a_200_is_an_rfc_error() {
        let p =
            Provider::generic().map_error_code("bad_verification_code", ErrorCode::INVALID_GRANT);
        let e = run(&p, 200, &json(), r#"{"error":"bad_verification_code","error_description":"The code passed is incorrect or expired."}"#, None).unwrap_err();
        assert_eq!(e.code(), &ErrorCode::INVALID_GRANT);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
    }

    #[test]
    fn ok_false_is_an_error_when_marked() {
        let p = Provider::generic().error_marker(ErrorMarker::Equals {
            pointer: "/ok".into(),
            value: Value::Bool(false),
        });
        let e = run(
            &p,
            200,
            &json(),
            r#"{"ok":false,"error":"invalid_code"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code().as_str(), "invalid_code");
        let out = run(
            &p,
            200,
            &json(),
            r#"{"ok":true,"access_token":"xoxb"}"#,
            None,
        )
        .unwrap();
        assert_eq!(out["access_token"], "xoxb");
    }

    #[test]
    fn form_answers_are_read_when_allowed() {
        let mut form = HeaderMap::new();
        form.insert(
            CONTENT_TYPE,
            HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
        );
        let out = run(
            &Provider::generic(),
            200,
            &form,
            "access_token=gho_abc&scope=repo&token_type=bearer",
            None,
        )
        .unwrap();
        assert_eq!(out["access_token"], "gho_abc");
        assert_eq!(out["expires_in"], 3600);
        assert!(run(&Provider::salesforce(), 200, &form, "access_token=x", None).is_err());
    }

    #[test]
    fn upstream_descriptions_never_echo_the_request_secrets() {
        let request = refresh_request();
        let e = run(&Provider::generic(), 400, &json(), r#"{"error":"invalid_grant","error_description":"token alexas-refresh-token for topsecret is bad"}"#, Some(&request)).unwrap_err();
        let d = e.description().unwrap();
        assert!(
            !d.contains("alexas-refresh-token") && !d.contains("topsecret"),
            "{d}"
        );
    }

    #[test]
    fn a_token_that_cannot_be_packed_is_a_server_error() {
        let body = r#"{"access_token":"has space","instance_url":"https://x"}"#;
        let e = run(&Provider::salesforce(), 200, &json(), body, None).unwrap_err();
        assert_eq!(e.code(), &ErrorCode::SERVER_ERROR);
        assert!(!e.description().unwrap().contains("has space"));
    }

    #[test]
    fn a_mapped_code_may_carry_its_own_status_and_names_the_upstream_code() {
        let p = Provider::generic()
            .error_marker(ErrorMarker::Equals {
                pointer: "/ok".into(),
                value: Value::Bool(false),
            })
            .map_error(
                "ratelimited",
                ErrorCode::TEMPORARILY_UNAVAILABLE,
                StatusCode::SERVICE_UNAVAILABLE,
            )
            .map_error_code("invalid_code", ErrorCode::INVALID_GRANT);
        let e = run(
            &p,
            200,
            &json(),
            r#"{"ok":false,"error":"ratelimited"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), &ErrorCode::TEMPORARILY_UNAVAILABLE);
        assert_eq!(e.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(e.description(), Some("upstream error ratelimited"));
        let e = run(
            &p,
            200,
            &json(),
            r#"{"ok":false,"error":"invalid_code"}"#,
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), &ErrorCode::INVALID_GRANT);
        assert_eq!(e.status(), StatusCode::BAD_REQUEST);
        assert_eq!(e.description(), Some("upstream error invalid_code"));
    }

    #[test]
    fn a_nested_token_brings_its_lifetime_and_refresh_token() {
        let p = Provider::generic().access_token_pointer("/authed_user/access_token");
        let body = r#"{"ok":true,"authed_user":{"access_token":"xoxe.xoxp-1","expires_in":43200,"refresh_token":"xoxe-1-r"}}"#;
        let out = run(&p, 200, &json(), body, None).unwrap();
        assert_eq!(out["access_token"], "xoxe.xoxp-1");
        assert_eq!(out["expires_in"], 43200);
        assert_eq!(out["refresh_token"], "xoxe-1-r");
        let top = r#"{"ok":true,"access_token":"xoxb-1","expires_in":600,"authed_user":{"access_token":"xoxp-1","expires_in":43200}}"#;
        let out = run(&p, 200, &json(), top, None).unwrap();
        assert_eq!(out["access_token"], "xoxb-1");
        assert_eq!(out["expires_in"], 600);
    }

    #[test]
    fn access_token_pointer_reads_nested_tokens() {
        let p = Provider::generic().access_token_pointer("/authed_user/access_token");
        let out = run(
            &p,
            200,
            &json(),
            r#"{"ok":true,"authed_user":{"access_token":"xoxp"}}"#,
            None,
        )
        .unwrap();
        assert_eq!(out["access_token"], "xoxp");
    }
}

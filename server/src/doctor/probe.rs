//! The probes: what the doctor sends the upstream (as Alexa would, with a code no server ever
//! issued) and how it reads each answer.

use std::time::{Duration, Instant};

use account_link_bridge::diagnostics::AnswerKind;
use account_link_bridge::oauth::basic_authorization;
use account_link_bridge::provider::{self, ErrorMarker};
use account_link_bridge::token_response::RewriteTokenResponseLayer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{FullBody, OAuthError, Provider};
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response};
use serde::Serialize;
use tower::{Service, ServiceExt};

use super::{DoctorArgs, INVALID_CODE};

/// How an upstream answer said what it said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerFormat {
    /// RFC 6749 §5.2: a JSON `error` with a 4xx status.
    RfcJson,
    /// A JSON `error` with a 2xx status (GitHub).
    ErrorIn200,
    /// `{"ok":false,"error":..}` (Slack).
    OkFalse,
    /// A form-encoded answer (GitHub without `Accept: application/json`).
    Form,
    /// An HTML page.
    Html,
    /// JSON without an `error` (a token for an invalid code would be alarming).
    OtherJson,
    /// Empty, plain text or unreadable.
    Other,
    /// No answer: refused, DNS, TLS or timeout.
    NoAnswer,
}

impl AnswerFormat {
    pub(super) fn label(self) -> &'static str {
        match self {
            AnswerFormat::RfcJson => "RFC 6749 JSON",
            AnswerFormat::ErrorIn200 => "JSON error in 200",
            AnswerFormat::OkFalse => "ok:false",
            AnswerFormat::Form => "form",
            AnswerFormat::Html => "HTML",
            AnswerFormat::OtherJson => "JSON, no error",
            AnswerFormat::Other => "unreadable",
            AnswerFormat::NoAnswer => "no answer",
        }
    }
}

/// One probe and what came back.
#[derive(Clone, Debug, Serialize)]
pub struct Probe {
    /// What the probe sent.
    pub name: &'static str,
    /// The HTTP status, when the upstream answered.
    pub status: Option<u16>,
    /// The answer's media type.
    pub content_type: Option<String>,
    /// The answer's format.
    pub format: AnswerFormat,
    /// The upstream's `error` code, if any (cut to 40 characters).
    pub error: Option<String>,
    /// Why there was no answer.
    pub failure: Option<String>,
    /// How long the answer took, in milliseconds.
    pub latency_ms: u64,
}

/// One way of asking: body format, credential placement, `Accept`.
pub(super) struct ProbeSpec {
    name: &'static str,
    json_body: bool,
    basic: bool,
    accept_json: bool,
}

/// The probes, in order; the judgement reads them by position (0: form with body credentials
/// and `Accept: application/json`, 1: HTTP Basic, 2: JSON, 3: form without `Accept`).
pub(super) const PROBES: [ProbeSpec; 4] = [
    ProbeSpec {
        name: "form, body credentials",
        json_body: false,
        basic: false,
        accept_json: true,
    },
    ProbeSpec {
        name: "form, HTTP Basic",
        json_body: false,
        basic: true,
        accept_json: true,
    },
    ProbeSpec {
        name: "JSON, no Content-Type",
        json_body: true,
        basic: false,
        accept_json: false,
    },
    ProbeSpec {
        name: "form, body credentials, no Accept",
        json_body: false,
        basic: false,
        accept_json: false,
    },
];

/// Sends one probe and reads its answer.
pub(super) async fn probe(upstream: &Upstream, spec: &ProbeSpec, args: &DoctorArgs) -> Probe {
    let redirect_uri = "https://layla.amazon.com/api/skill/link/M0DOCTOR0000";
    let mut params = vec![
        ("grant_type", "authorization_code"),
        ("code", INVALID_CODE),
        ("redirect_uri", redirect_uri),
    ];
    if !spec.basic {
        params.push(("client_id", &args.client_id));
        params.push(("client_secret", &args.client_secret));
    }
    let body = if spec.json_body {
        let object: serde_json::Map<String, serde_json::Value> = params
            .iter()
            .map(|(n, v)| (n.to_string(), serde_json::Value::from(*v)))
            .collect();
        serde_json::to_vec(&object).expect("a map serializes")
    } else {
        serde_urlencoded::to_string(&params)
            .expect("pairs encode")
            .into_bytes()
    };
    let mut request = Request::post("/")
        .body(FullBody::from(bytes::Bytes::from(body)))
        .expect("a request");
    let headers = request.headers_mut();
    if !spec.json_body {
        headers.insert(
            CONTENT_TYPE,
            "application/x-www-form-urlencoded"
                .parse()
                .expect("a header"),
        );
    }
    if spec.accept_json {
        headers.insert(ACCEPT, "application/json".parse().expect("a header"));
    }
    if spec.basic {
        // The library's own encoder: the probe sends what the bridge would send.
        headers.insert(
            AUTHORIZATION,
            basic_authorization(&args.client_id, &args.client_secret),
        );
    }
    let started = Instant::now();
    let response = call(upstream, request).await;
    let latency_ms = started.elapsed().as_millis() as u64;
    read_probe(spec.name, &response, latency_ms)
}

async fn call(upstream: &Upstream, request: Request<FullBody>) -> Response<FullBody> {
    let mut upstream = upstream.clone();
    let ready = upstream
        .ready()
        .await
        .expect("the upstream client is infallible");
    ready
        .call(request)
        .await
        .expect("the upstream client is infallible")
}

fn read_probe(name: &'static str, response: &Response<FullBody>, latency_ms: u64) -> Probe {
    if let Some(error) = response.extensions().get::<OAuthError>() {
        return Probe {
            name,
            status: None,
            content_type: None,
            format: AnswerFormat::NoAnswer,
            error: None,
            failure: Some(error.description().unwrap_or("no answer").to_owned()),
            latency_ms,
        };
    }
    let status = response.status();
    let (kind, error, content_type) = classify(response);
    let format = match kind {
        AnswerKind::OkFalse => AnswerFormat::OkFalse,
        AnswerKind::ErrorIn200 => AnswerFormat::ErrorIn200,
        AnswerKind::Json if error.is_some() && status.is_success() => AnswerFormat::ErrorIn200,
        AnswerKind::Json if error.is_some() => AnswerFormat::RfcJson,
        AnswerKind::Json => AnswerFormat::OtherJson,
        AnswerKind::Form => AnswerFormat::Form,
        AnswerKind::Html => AnswerFormat::Html,
        _ => AnswerFormat::Other,
    };
    Probe {
        name,
        status: Some(status.as_u16()),
        content_type,
        format,
        error: error.as_deref().map(clean_code),
        failure: None,
        latency_ms,
    }
}

/// What an answer is, read by the library's own rewrite (the one the bridge runs on every
/// answer) with a provider that reads everything: JSON and forms, and Slack's `ok:false`.
///
/// Read once as a non-2xx answer, where no error marker applies, for the encoding (so a form
/// with an `error` in a 200 stays a form, as the probes need to tell), and once with its own
/// status for `ok:false`. An `error` in another 2xx answer is left to the caller.
fn classify(response: &Response<FullBody>) -> (AnswerKind, Option<String>, Option<String>) {
    let reader = Provider::generic()
        .named("doctor")
        .answer_format(provider::AnswerFormat::Either)
        .error_marker(ok_false_marker());
    let rewrite = RewriteTokenResponseLayer::for_provider(&reader);
    let read = |status| {
        rewrite
            .rewrite_answer(status, response.headers(), response.body().as_bytes(), None)
            .1
    };
    let encoding = read(http::StatusCode::BAD_REQUEST);
    let mut kind = encoding.answer.unwrap_or(AnswerKind::Unreadable);
    if kind == AnswerKind::Json
        && response.status().is_success()
        && read(response.status()).answer == Some(AnswerKind::OkFalse)
    {
        kind = AnswerKind::OkFalse;
    }
    let content_type = encoding
        .upstream_content_type()
        .map(|media| media.to_ascii_lowercase());
    (kind, encoding.upstream_error, content_type)
}

/// Slack's marker of an error inside a 2xx answer: `/ok` is `false`.
pub(super) fn ok_false_marker() -> ErrorMarker {
    ErrorMarker::Equals {
        pointer: "/ok".into(),
        value: serde_json::Value::Bool(false),
    }
}

/// An upstream error code as shown: RFC 6749's character set, 40 characters at most.
fn clean_code(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_graphic())
        .take(40)
        .collect()
}

/// Whether the authorization URL answers (any status below 500), in words.
pub(super) async fn check_authorize(url: &http::Uri, timeout: Duration) -> Result<String, String> {
    let upstream = Upstream::try_new(url.clone())
        .map_err(|e| format!("--upstream-authorize-url: {e}"))?
        .timeout(timeout);
    let mut request = Request::new(FullBody::default());
    *request.method_mut() = Method::GET;
    let response = call(&upstream, request).await;
    Ok(match response.extensions().get::<OAuthError>() {
        Some(error) => format!("no answer: {}", error.description().unwrap_or("failed")),
        None if response.status().is_server_error() => {
            format!("HTTP {} (a server error)", response.status().as_u16())
        }
        None => format!("HTTP {} (answers)", response.status().as_u16()),
    })
}

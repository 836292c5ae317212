//! `bridge doctor`: probes an upstream token endpoint as Alexa would, with codes that cannot be
//! valid (so no real grant is consumed), and says whether Alexa can link through it and which
//! provider settings fit.

use std::time::{Duration, Instant};

use account_link_bridge::authorize::AlexaRedirects;
use account_link_bridge::diagnostics::AnswerKind;
use account_link_bridge::oauth::{basic_authorization, ClientAuth};
use account_link_bridge::provider::{self, ErrorMarker};
use account_link_bridge::token_response::RewriteTokenResponseLayer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{FullBody, OAuthError, Provider};
use clap::Parser;

use crate::config::listed;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE};
use http::{Method, Request, Response};
use serde::Serialize;
use tower::{Service, ServiceExt};

/// The code every probe sends: no authorization server ever issued it.
pub const INVALID_CODE: &str = "alexa-bridge-doctor-invalid-code";

/// Probe an upstream token endpoint as Alexa would and say whether Alexa can link through it.
#[derive(Debug, Clone, Parser)]
#[command(name = "doctor")]
pub struct DoctorArgs {
    /// The upstream token endpoint to probe.
    #[arg(long, env = "BRIDGE_UPSTREAM_TOKEN_URL")]
    pub upstream_token_url: http::Uri,

    /// The upstream authorization endpoint; checked to answer (any status below 500).
    #[arg(long, env = "BRIDGE_UPSTREAM_AUTHORIZE_URL")]
    pub upstream_authorize_url: Option<http::Uri>,

    /// The provider preset the bridge is (or would be) configured with.
    #[arg(long, env = "BRIDGE_PROVIDER", default_value = "salesforce")]
    pub provider: String,

    /// The client id the probes send. With the real one, the probes can tell where the
    /// upstream wants credentials.
    #[arg(
        long,
        env = "BRIDGE_DOCTOR_CLIENT_ID",
        default_value = "alexa-bridge-doctor"
    )]
    pub client_id: String,

    /// The client secret the probes send; never printed.
    #[arg(
        long,
        env = "BRIDGE_DOCTOR_CLIENT_SECRET",
        default_value = "alexa-bridge-doctor-secret",
        hide_env_values = true,
        hide_default_value = true
    )]
    pub client_secret: String,

    /// How long one probe may take, in seconds (longer than Alexa's 4.5 s, to measure).
    #[arg(long, default_value_t = 10.0)]
    pub timeout: f64,

    /// The vendor ids the bridge is (or would be) pinned to, comma-separated; the report shows
    /// the redirect URLs the bridge then accepts from Alexa.
    #[arg(long, env = "BRIDGE_ALEXA_VENDOR_ID", value_delimiter = ',')]
    pub alexa_vendor_id: Vec<String>,

    /// Extra Alexa redirect hosts the bridge is (or would be) configured with.
    #[arg(long, env = "BRIDGE_ALEXA_REDIRECT_HOST", value_delimiter = ',')]
    pub alexa_redirect_host: Vec<String>,

    /// Whether the bridge's own PKCE pair is forced on (as the bridge's --pkce).
    #[arg(long, env = "BRIDGE_PKCE", conflicts_with = "no_pkce")]
    pub pkce: bool,

    /// Whether the bridge's own PKCE pair is turned off (as the bridge's --no-pkce).
    #[arg(long, env = "BRIDGE_NO_PKCE")]
    pub no_pkce: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// The deadline answers are held to, in milliseconds (Alexa's: 4500; lower in tests).
    #[arg(long, hide = true, default_value_t = 4500)]
    pub alexa_deadline_ms: u64,
}

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
    fn label(self) -> &'static str {
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

/// The doctor's findings.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The token URL probed.
    pub token_url: String,
    /// The probes, in order.
    pub probes: Vec<Probe>,
    /// Whether `Accept: application/json` is honoured: `json-always`, `honoured`,
    /// `not-honoured`, or `unknown`.
    pub accept_json: &'static str,
    /// Whether errors come back with HTTP 200.
    pub errors_as_200: bool,
    /// `ok`, `error`, or `not https`.
    pub tls: &'static str,
    /// The slowest probe, in milliseconds.
    pub max_latency_ms: u64,
    /// The deadline the latency is held to, in milliseconds.
    pub deadline_ms: u64,
    /// The authorization URL's status, or why it did not answer.
    pub authorize: Option<String>,
    /// Where the upstream wants client credentials, when the probes could tell.
    pub credentials: &'static str,
    /// The provider preset that fits.
    pub suggested_provider: &'static str,
    /// Settings on top of the preset, as library calls, when no preset fits as it is.
    pub custom_settings: Vec<String>,
    /// The redirect URLs the bridge accepts from Alexa, as patterns.
    pub alexa_redirects: Vec<String>,
    /// Whether the bridge makes its own PKCE pair toward the upstream, and why.
    pub pkce: String,
    /// Everything that would break Alexa with the configured provider.
    pub problems: Vec<String>,
    /// Whether Alexa can link through this upstream at all.
    pub usable: bool,
    /// Why not, when it cannot.
    pub unusable_because: Option<String>,
}

struct ProbeSpec {
    name: &'static str,
    json_body: bool,
    basic: bool,
    accept_json: bool,
}

const PROBES: [ProbeSpec; 4] = [
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

/// Runs the probes and judges the upstream.
pub async fn run(args: &DoctorArgs) -> Result<Report, String> {
    let configured = Provider::by_name(&args.provider).ok_or_else(|| {
        format!(
            "unknown provider {:?}: use salesforce, github, slack or generic",
            args.provider
        )
    })?;
    if !(args.timeout > 0.0 && args.timeout.is_finite()) {
        return Err("--timeout must be a positive number of seconds".into());
    }
    let timeout = Duration::from_secs_f64(args.timeout);
    let upstream = Upstream::try_new(args.upstream_token_url.clone())
        .map_err(|e| e.to_string())?
        .timeout(timeout);
    let mut probes = Vec::with_capacity(PROBES.len());
    for spec in &PROBES {
        probes.push(probe(&upstream, spec, args).await);
    }
    let authorize = match &args.upstream_authorize_url {
        None => None,
        Some(url) => Some(check_authorize(url, timeout).await?),
    };
    Ok(judge(args, &configured, probes, authorize))
}

async fn probe(upstream: &Upstream, spec: &ProbeSpec, args: &DoctorArgs) -> Probe {
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
fn ok_false_marker() -> ErrorMarker {
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

async fn check_authorize(url: &http::Uri, timeout: Duration) -> Result<String, String> {
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

fn judge(
    args: &DoctorArgs,
    configured: &Provider,
    probes: Vec<Probe>,
    authorize: Option<String>,
) -> Report {
    let url = &args.upstream_token_url;
    let deadline_ms = args.alexa_deadline_ms;
    let answered: Vec<&Probe> = probes.iter().filter(|p| p.status.is_some()).collect();
    let https = url.scheme_str() == Some("https");
    let tls_failed = probes
        .iter()
        .any(|p| p.failure.as_deref().is_some_and(|f| f.contains("TLS")));
    let tls = match (https, tls_failed) {
        (false, _) => "not https",
        (true, true) => "error",
        (true, false) => "ok",
    };
    let max_latency_ms = probes.iter().map(|p| p.latency_ms).max().unwrap_or(0);
    let errors_as_200 = answered.iter().any(|p| {
        matches!(p.format, AnswerFormat::ErrorIn200 | AnswerFormat::OkFalse)
            || (p.format == AnswerFormat::Form
                && p.error.is_some()
                && p.status.is_some_and(|s| s < 300))
    });
    let (with_accept, without_accept) = (&probes[0], &probes[3]);
    let is_json = |p: &Probe| {
        matches!(
            p.format,
            AnswerFormat::RfcJson
                | AnswerFormat::ErrorIn200
                | AnswerFormat::OkFalse
                | AnswerFormat::OtherJson
        )
    };
    let accept_json = match (with_accept.format, without_accept.format) {
        (AnswerFormat::Form, _) => "not-honoured",
        (_, AnswerFormat::Form) if is_json(with_accept) => "honoured",
        _ if is_json(with_accept) && is_json(without_accept) => "json-always",
        _ => "unknown",
    };
    let any_form = probes.iter().any(|p| p.format == AnswerFormat::Form);
    let ok_false = probes.iter().any(|p| p.format == AnswerFormat::OkFalse);
    // With the real credentials, the probe that gets past client authentication names the
    // placement; with dummy ones both say invalid_client (or alike) and nothing is learned.
    let client_refused = |p: &Probe| {
        p.error.as_deref().is_some_and(|e| {
            e.contains("client") || e == "unauthorized" || e == "incorrect_client_credentials"
        }) || p.status == Some(401)
    };
    let (body_probe, basic_probe) = (&probes[0], &probes[1]);
    // Only an OAuth answer says anything about the credentials; a 500 page says nothing.
    let oauth_answer =
        |p: &Probe| is_json(p) || (p.format == AnswerFormat::Form && p.error.is_some());
    let credentials = match (
        oauth_answer(body_probe) && !client_refused(body_probe),
        oauth_answer(basic_probe) && !client_refused(basic_probe),
    ) {
        (true, false) => "body",
        (false, true) => "basic",
        (true, true) => "either",
        (false, false) => "unknown (pass the real --client-id and --client-secret to tell)",
    };
    let host = url.host().unwrap_or("").to_ascii_lowercase();
    let salesforce_like = host.ends_with("salesforce.com")
        || host.ends_with("force.com")
        || url.path().ends_with("/services/oauth2/token");
    let suggested_provider = if ok_false || host.ends_with("slack.com") {
        "slack"
    } else if any_form || errors_as_200 || host.ends_with("github.com") {
        "github"
    } else if salesforce_like {
        "salesforce"
    } else {
        "generic"
    };
    let mut custom_settings = Vec::new();
    let preset_basic = uses_basic(&Provider::by_name(suggested_provider).unwrap_or_default());
    match credentials {
        "body" if preset_basic => {
            custom_settings.push(".client_auth(ClientAuth::Body)".to_string())
        }
        "basic" if !preset_basic => {
            custom_settings.push(".client_auth(ClientAuth::Basic)".to_string())
        }
        _ => {}
    }

    let mut problems = Vec::new();
    let configured_name = configured.name().to_string();
    if configured_name != suggested_provider {
        if any_form && reads_only_json(configured) {
            problems.push(format!(
                "--provider {configured_name} reads only JSON answers, but this upstream answers forms: every exchange would end in server_error"
            ));
        }
        if ok_false && !reads_ok_false(configured) {
            problems.push(format!(
                "--provider {configured_name} does not read ok:false: refused codes would reach Alexa as server_error instead of invalid_grant"
            ));
        }
        if accept_json == "honoured" && reads_only_json(configured) {
            problems.push(format!(
                "this upstream answers forms unless asked for JSON; --provider {configured_name} asks, but a proxy that drops Accept would break it"
            ));
        }
    }
    let configured_basic = uses_basic(configured);
    match credentials {
        "body" if configured_basic => problems.push(format!(
            "--provider {configured_name} sends credentials with HTTP Basic, but this upstream accepts them only in the body: every exchange would fail with invalid_client"
        )),
        "basic" if !configured_basic => problems.push(format!(
            "--provider {configured_name} sends credentials in the body, but this upstream accepts them only with HTTP Basic: every exchange would fail with invalid_client"
        )),
        _ => {}
    }
    if max_latency_ms > deadline_ms {
        problems.push(format!(
            "the slowest answer took {max_latency_ms} ms; Alexa gives up after {deadline_ms} ms"
        ));
    }
    if tls == "error" {
        problems.push("the TLS handshake failed (certificate not trusted or expired?)".into());
    }
    if tls == "not https" {
        problems.push(
            "the token URL is not https: codes, tokens and the client secret cross the network in clear"
                .into(),
        );
    }
    if let Some(answer) = &authorize {
        if !answer.contains("(answers)") {
            problems.push(format!("the authorization URL does not work: {answer}"));
        }
    }
    if probes.iter().any(|p| p.format == AnswerFormat::OtherJson) {
        problems.push(
            "a probe with an invalid code got JSON without an error: the upstream does not refuse bad codes the OAuth way"
                .into(),
        );
    }

    let all_failed = answered.is_empty();
    let all_broken = answered.iter().all(|p| {
        p.status.is_some_and(|s| s >= 500)
            || matches!(p.format, AnswerFormat::Html | AnswerFormat::Other)
    });
    let unusable_because = if all_failed {
        Some(if tls_failed {
            "the TLS handshake failed".to_string()
        } else {
            format!(
                "the upstream did not answer: {}",
                probes[0].failure.as_deref().unwrap_or("no answer")
            )
        })
    } else if all_broken {
        Some(
            "every answer was a server error or an HTML/unreadable page, never an OAuth error"
                .to_string(),
        )
    } else if max_latency_ms > deadline_ms {
        Some(format!(
            "too slow: {max_latency_ms} ms, more than Alexa's {deadline_ms} ms"
        ))
    } else {
        None
    };
    let mut redirects = AlexaRedirects::new();
    for host in listed(&args.alexa_redirect_host) {
        redirects = redirects.allow_host(host);
    }
    let vendor_ids: Vec<&str> = listed(&args.alexa_vendor_id).collect();
    if !vendor_ids.is_empty() {
        redirects = redirects.vendor_ids(vendor_ids);
    }
    let mut alexa_redirects = redirects.accepted();
    if redirects.pinned_vendor_ids().is_none() {
        alexa_redirects.push(
            "(no vendor pin: any Alexa skill; pass --alexa-vendor-id, the id at the end of the skill's redirect URLs)"
                .into(),
        );
    }
    let pkce = pkce_verdict(args, configured);
    Report {
        token_url: url.to_string(),
        alexa_redirects,
        pkce,
        probes,
        accept_json,
        errors_as_200,
        tls,
        max_latency_ms,
        deadline_ms,
        authorize,
        credentials,
        suggested_provider,
        custom_settings,
        problems,
        usable: unusable_because.is_none(),
        unusable_because,
    }
}

/// Whether the bridge would make its own PKCE pair, in words an operator can act on.
fn pkce_verdict(args: &DoctorArgs, configured: &Provider) -> String {
    // Of the presets, only Salesforce's asks for PKCE.
    let preset_asks = configured.settings().pkce();
    let on = !args.no_pkce && (args.pkce || preset_asks);
    match (on, preset_asks) {
        (true, true) => "on (Salesforce preset): works with External Client Apps that require PKCE, and with Connected Apps of older orgs, which accept it".into(),
        (true, false) => "on (--pkce): the upstream must accept code_challenge and code_verifier".into(),
        (false, true) => "off (--no-pkce): an External Client App that requires PKCE refuses every link; turn it back on unless the app does not accept PKCE".into(),
        (false, false) => format!("off (--provider {} does not ask for it; --pkce turns it on)", configured.name()),
    }
}

/// Whether a provider sends the client credentials with HTTP Basic (of the presets, Slack).
fn uses_basic(provider: &Provider) -> bool {
    provider.settings().client_auth() == ClientAuth::Basic
}

/// Whether a provider reads only JSON answers (of the presets, Salesforce and Slack).
fn reads_only_json(provider: &Provider) -> bool {
    provider.settings().answer_format() == provider::AnswerFormat::Json
}

/// Whether a provider reads Slack's `{"ok":false}` as an error (of the presets, Slack).
fn reads_ok_false(provider: &Provider) -> bool {
    let ok_false = ok_false_marker();
    provider.settings().error_markers().any(|m| *m == ok_false)
}

impl Report {
    /// The report as a readable table.
    pub fn table(&self) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let _ = writeln!(out, "bridge doctor: {}", self.token_url);
        let _ = writeln!(
            out,
            "probes send grant_type=authorization_code with code={INVALID_CODE} (no real grant is used)\n"
        );
        let _ = writeln!(
            out,
            "{:<36} {:>6}  {:<34} {:<18} {:<24} {:>8}",
            "probe", "status", "content type", "format", "error", "latency"
        );
        for p in &self.probes {
            let status = p.status.map_or("-".to_string(), |s| s.to_string());
            let error = p
                .error
                .clone()
                .or_else(|| p.failure.clone())
                .unwrap_or_else(|| "-".into());
            let _ = writeln!(
                out,
                "{:<36} {:>6}  {:<34} {:<18} {:<24} {:>5} ms",
                p.name,
                status,
                p.content_type.as_deref().unwrap_or("-"),
                p.format.label(),
                error,
                p.latency_ms
            );
        }
        let _ = writeln!(out);
        let accept = match self.accept_json {
            "json-always" => "JSON always",
            "honoured" => "honoured (forms without it)",
            "not-honoured" => "not honoured (forms even when asked)",
            _ => "unknown",
        };
        let rows = [
            ("Accept: application/json", accept.to_string()),
            (
                "errors with HTTP 200",
                if self.errors_as_200 { "yes" } else { "no" }.to_string(),
            ),
            ("TLS", self.tls.to_string()),
            (
                "latency",
                format!(
                    "{} ms at most (Alexa allows {} ms)",
                    self.max_latency_ms, self.deadline_ms
                ),
            ),
            (
                "authorize URL",
                self.authorize
                    .clone()
                    .unwrap_or_else(|| "not checked (no --upstream-authorize-url)".into()),
            ),
            ("credentials", self.credentials.to_string()),
            ("PKCE toward upstream", self.pkce.clone()),
            (
                "suggested provider",
                format!("--provider {}", self.suggested_provider),
            ),
        ];
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<26} {value}");
        }
        for (i, accepted) in self.alexa_redirects.iter().enumerate() {
            let name = if i == 0 { "Alexa redirect URLs" } else { "" };
            let _ = writeln!(out, "{name:<26} {accepted}");
        }
        if !self.custom_settings.is_empty() {
            let _ = writeln!(
                out,
                "{:<26} Provider::{}(){}",
                "custom settings",
                self.suggested_provider,
                self.custom_settings.join("")
            );
        }
        if self.problems.is_empty() {
            let _ = writeln!(out, "\nnothing found that would break Alexa");
        } else {
            let _ = writeln!(out, "\nwould break Alexa:");
            for problem in &self.problems {
                let _ = writeln!(out, "  - {problem}");
            }
        }
        match &self.unusable_because {
            None => {
                let _ = writeln!(out, "\nverdict: usable");
            }
            Some(why) => {
                let _ = writeln!(out, "\nverdict: UNUSABLE: {why}");
            }
        }
        out
    }
}

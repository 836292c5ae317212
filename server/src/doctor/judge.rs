//! The judgement: what the probes say about the upstream, what would break Alexa with the
//! configured provider, what to do about it, and the verdict, which agrees with all of these.

use account_link_bridge::authorize::AlexaRedirects;
use account_link_bridge::oauth::ClientAuth;
use account_link_bridge::provider;
use account_link_bridge::Provider;

use super::probe::{ok_false_marker, AnswerFormat, Probe};
use super::report::{Report, Verdict};
use super::DoctorArgs;
use crate::config::listed;

/// One finding that would break Alexa, and what to do about it.
struct Problem {
    what: String,
    fix: String,
}

/// Judges the probes of `token_url` (and the authorization URL's answer) for a bridge configured
/// with `configured`.
pub(super) fn judge(
    args: &DoctorArgs,
    token_url: &http::Uri,
    configured: &Provider,
    probes: Vec<Probe>,
    authorize: Option<String>,
) -> Report {
    let url = token_url;
    let deadline_ms = args.alexa_deadline_ms;
    let answered: Vec<&Probe> = probes.iter().filter(|p| p.status.is_some()).collect();
    let https = url.scheme_str() == Some("https");
    let tls_failed = probes
        .iter()
        .any(|p| p.failure.as_deref().is_some_and(|f| f.contains("TLS")));
    // A failed handshake reached the host; a refused connection, a DNS failure or a timeout did
    // not, and then nothing below is known: no word on TLS, the answers or a preset.
    let reached = !answered.is_empty() || tls_failed;
    let judged = !answered.is_empty();
    let tls = match (reached, https, tls_failed) {
        (false, _, _) => "unknown",
        (true, false, _) => "not https",
        (true, true, true) => "error",
        (true, true, false) => "ok",
    };
    let max_latency_ms = answered.iter().map(|p| p.latency_ms).max().unwrap_or(0);
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
    // A preset is suggested from the answers; with none, from the host name alone it would be
    // a guess about a server that may not exist.
    let suggested_provider = if !judged {
        "unknown"
    } else if ok_false || host.ends_with("slack.com") {
        "slack"
    } else if any_form || errors_as_200 || host.ends_with("github.com") {
        "github"
    } else if salesforce_like {
        "salesforce"
    } else {
        "generic"
    };
    let mut custom_settings = Vec::new();
    if judged {
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
    }
    let use_suggested = if custom_settings.is_empty() {
        format!("use --provider {suggested_provider}")
    } else {
        format!(
            "serve the layers with Provider::{suggested_provider}(){} (the bridge's presets do not fit as they are)",
            custom_settings.join("")
        )
    };

    let mut problems = Vec::new();
    let mut problem = |what: String, fix: String| problems.push(Problem { what, fix });
    let configured_name = configured.name().to_string();
    if judged && configured_name != suggested_provider {
        if any_form && reads_only_json(configured) {
            problem(
                format!("--provider {configured_name} reads only JSON answers, but this upstream answers forms: every exchange would end in server_error"),
                use_suggested.clone(),
            );
        }
        if ok_false && !reads_ok_false(configured) {
            problem(
                format!("--provider {configured_name} does not read ok:false: refused codes would reach Alexa as server_error instead of invalid_grant"),
                use_suggested.clone(),
            );
        }
        if accept_json == "honoured" && reads_only_json(configured) {
            problem(
                format!("this upstream answers forms unless asked for JSON; --provider {configured_name} asks, but a proxy that drops Accept would break it"),
                use_suggested.clone(),
            );
        }
    }
    let configured_basic = uses_basic(configured);
    match credentials {
        "body" if judged && configured_basic => problem(
            format!("--provider {configured_name} sends credentials with HTTP Basic, but this upstream accepts them only in the body: every exchange would fail with invalid_client"),
            use_suggested.clone(),
        ),
        "basic" if judged && !configured_basic => problem(
            format!("--provider {configured_name} sends credentials in the body, but this upstream accepts them only with HTTP Basic: every exchange would fail with invalid_client"),
            use_suggested.clone(),
        ),
        _ => {}
    }
    if max_latency_ms > deadline_ms {
        problem(
            format!("the slowest answer took {max_latency_ms} ms; Alexa gives up after {deadline_ms} ms"),
            format!("make the upstream answer within {deadline_ms} ms, or run the bridge nearer to it"),
        );
    }
    if tls == "error" {
        problem(
            "the TLS handshake failed (certificate not trusted or expired?)".into(),
            "give the upstream a certificate from a public authority, unexpired and naming the URL's host".into(),
        );
    }
    // The bridge itself accepts a plain http upstream on loopback (nothing crosses a network).
    if tls == "not https" && !is_loopback(url) {
        problem(
            "the token URL is not https: codes, tokens and the client secret cross the network in clear".into(),
            "use the upstream's https URL".into(),
        );
    }
    if let Some(answer) = &authorize {
        if !answer.contains("(answers)") {
            problem(
                format!("the authorization URL does not work: {answer}"),
                "check --upstream-authorize-url: the upstream's authorization endpoint, which the browser is sent to".into(),
            );
        }
    }
    if probes.iter().any(|p| p.format == AnswerFormat::OtherJson) {
        problem(
            "a probe with an invalid code got JSON without an error: the upstream does not refuse bad codes the OAuth way".into(),
            "check that --upstream-token-url is the upstream's OAuth token endpoint".into(),
        );
    }

    let all_broken = answered.iter().all(|p| {
        p.status.is_some_and(|s| s >= 500)
            || matches!(p.format, AnswerFormat::Html | AnswerFormat::Other)
    });
    let (verdict, unusable_because) = if !reached {
        (
            Verdict::Unreachable,
            Some(format!(
                "the upstream did not answer: {}; check the URL, its DNS name, the firewall and that the server runs",
                probes[0].failure.as_deref().unwrap_or("no answer")
            )),
        )
    } else if !judged {
        (
            Verdict::Unusable,
            Some("the TLS handshake failed".to_string()),
        )
    } else if all_broken {
        (
            Verdict::Unusable,
            Some(
                "every answer was a server error or an HTML/unreadable page, never an OAuth error"
                    .to_string(),
            ),
        )
    } else if max_latency_ms > deadline_ms {
        (
            Verdict::Unusable,
            Some(format!(
                "too slow: {max_latency_ms} ms, more than Alexa's {deadline_ms} ms"
            )),
        )
    } else if !problems.is_empty() {
        (Verdict::FixFirst, None)
    } else {
        (Verdict::Usable, None)
    };
    let mut fixes: Vec<String> = Vec::new();
    for Problem { fix, .. } in &problems {
        if !fixes.contains(fix) {
            fixes.push(fix.clone());
        }
    }
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
        reached,
        accept_json,
        errors_as_200,
        tls,
        max_latency_ms,
        deadline_ms,
        authorize,
        credentials: if judged { credentials } else { "unknown" },
        suggested_provider,
        custom_settings,
        problems: problems.into_iter().map(|p| p.what).collect(),
        fixes,
        usable: unusable_because.is_none(),
        ready: verdict == Verdict::Usable,
        verdict,
        unusable_because,
    }
}

/// Whether `url`'s host is loopback (`localhost`, `127.0.0.0/8`, `::1`).
pub(super) fn is_loopback(url: &http::Uri) -> bool {
    let host = url.host().unwrap_or("");
    host.eq_ignore_ascii_case("localhost")
        || host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
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

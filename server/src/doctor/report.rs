//! The doctor's report: its fields (the JSON of `--json`) and its table.

use serde::Serialize;

use super::probe::Probe;
use super::INVALID_CODE;

/// The doctor's verdict, which agrees with the report's lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Alexa can link through this upstream with this configuration: nothing found that would
    /// break it.
    Usable,
    /// The upstream can serve Alexa, but the configuration would break it: the report's fixes
    /// say what to change first.
    FixFirst,
    /// The upstream answered, but Alexa cannot link through it (server errors only, too slow, a
    /// failed TLS handshake).
    Unusable,
    /// No probe got an answer: nothing about the upstream is known.
    Unreachable,
}

/// The doctor's findings.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The token URL probed.
    pub token_url: String,
    /// The probes, in order.
    pub probes: Vec<Probe>,
    /// Whether any probe reached the upstream (an answer, or at least a TLS handshake); when
    /// not, the fields below that describe the upstream are `unknown`.
    pub reached: bool,
    /// Whether `Accept: application/json` is honoured: `json-always`, `honoured`,
    /// `not-honoured`, or `unknown`.
    pub accept_json: &'static str,
    /// Whether errors come back with HTTP 200.
    pub errors_as_200: bool,
    /// `ok`, `error`, `not https`, or `unknown` (not reached).
    pub tls: &'static str,
    /// The slowest answer, in milliseconds.
    pub max_latency_ms: u64,
    /// The deadline the latency is held to, in milliseconds.
    pub deadline_ms: u64,
    /// The authorization URL's status, or why it did not answer.
    pub authorize: Option<String>,
    /// Where the upstream wants client credentials, when the probes could tell.
    pub credentials: &'static str,
    /// The provider preset that fits (`unknown` when nothing answered).
    pub suggested_provider: &'static str,
    /// Settings on top of the preset, as library calls, when no preset fits as it is.
    pub custom_settings: Vec<String>,
    /// The redirect URLs the bridge accepts from Alexa, as patterns.
    pub alexa_redirects: Vec<String>,
    /// Whether the bridge makes its own PKCE pair toward the upstream, and why.
    pub pkce: String,
    /// Everything that would break Alexa with the configured provider.
    pub problems: Vec<String>,
    /// What to do about the problems, each fix once.
    pub fixes: Vec<String>,
    /// The verdict.
    pub verdict: Verdict,
    /// Whether Alexa can link through this upstream at all, with the right settings (the
    /// verdict is `usable` or `fix_first`).
    pub usable: bool,
    /// Whether Alexa can link through it with these settings (the verdict is `usable`): the
    /// doctor's exit status is 0 only then.
    pub ready: bool,
    /// Why not, when it cannot.
    pub unusable_because: Option<String>,
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
        if !self.reached {
            let _ = writeln!(
                out,
                "no probe reached the upstream, so nothing is said of its answers"
            );
        }
        let mut rows = Vec::new();
        if self.reached {
            let accept = match self.accept_json {
                "json-always" => "JSON always",
                "honoured" => "honoured (forms without it)",
                "not-honoured" => "not honoured (forms even when asked)",
                _ => "unknown",
            };
            rows.push(("Accept: application/json", accept.to_string()));
            rows.push((
                "errors with HTTP 200",
                if self.errors_as_200 { "yes" } else { "no" }.to_string(),
            ));
            let tls = match self.token_url.parse::<http::Uri>() {
                Ok(url) if self.tls == "not https" && super::judge::is_loopback(&url) => {
                    "not https (loopback: nothing crosses a network, and the bridge allows it)"
                        .to_string()
                }
                _ => self.tls.to_string(),
            };
            rows.push(("TLS", tls));
            rows.push((
                "latency",
                format!(
                    "{} ms at most (Alexa allows {} ms)",
                    self.max_latency_ms, self.deadline_ms
                ),
            ));
        }
        rows.push((
            "authorize URL",
            self.authorize
                .clone()
                .unwrap_or_else(|| "not checked (no --upstream-authorize-url)".into()),
        ));
        if self.reached {
            rows.push(("credentials", self.credentials.to_string()));
        }
        rows.push(("PKCE toward upstream", self.pkce.clone()));
        if self.suggested_provider != "unknown" {
            rows.push((
                "suggested provider",
                format!("--provider {}", self.suggested_provider),
            ));
        }
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
        if !self.problems.is_empty() {
            let _ = writeln!(out, "\nwould break Alexa:");
            for problem in &self.problems {
                let _ = writeln!(out, "  - {problem}");
            }
            let _ = writeln!(out, "\nto fix:");
            for fix in &self.fixes {
                let _ = writeln!(out, "  - {fix}");
            }
        } else if self.verdict == Verdict::Usable {
            // Only a usable upstream gets the all-clear: for an unusable one the verdict below
            // says what is wrong, and "nothing would break Alexa" above it would contradict it.
            let _ = writeln!(out, "\nnothing found that would break Alexa");
        }
        let why = self.unusable_because.as_deref().unwrap_or("");
        let _ = match self.verdict {
            Verdict::Usable => writeln!(out, "\nverdict: usable"),
            Verdict::FixFirst => writeln!(
                out,
                "\nverdict: NOT READY: Alexa would fail with these settings; fix first: {}",
                self.fixes.join("; ")
            ),
            Verdict::Unusable => writeln!(out, "\nverdict: UNUSABLE: {why}"),
            Verdict::Unreachable => writeln!(out, "\nverdict: UNREACHABLE: {why}"),
        };
        out
    }
}

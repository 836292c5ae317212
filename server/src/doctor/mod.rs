//! `bridge doctor`: probes an upstream token endpoint as Alexa would, with codes that cannot be
//! valid (so no real grant is consumed), and says whether Alexa can link through it, which
//! provider settings fit, what would break Alexa with the configured ones and what to do about
//! it. `bridge doctor --demo` probes the embedded demo upstream.
//!
//! - `probe`: what is sent and how each answer is read;
//! - `judge`: what the answers say, the problems and their fixes, the verdict;
//! - `report` ([`Report`], [`Verdict`]): the report, as JSON and as a table.
//!
//! The verdict agrees with the lists: an upstream that never answered gets no word on TLS or a
//! provider preset, and a report that lists what would break Alexa ends in a verdict that
//! names the fixes, never in "usable".

use std::time::Duration;

use account_link_bridge::upstream::Upstream;
use account_link_bridge::Provider;
use clap::Parser;

mod judge;
mod probe;
mod report;

pub use self::probe::{AnswerFormat, Probe};
pub use self::report::{Report, Verdict};

/// The code every probe sends: no authorization server ever issued it.
pub const INVALID_CODE: &str = "alexa-bridge-doctor-invalid-code";

/// Probe an upstream token endpoint as Alexa would and say whether Alexa can link through it.
#[derive(Debug, Clone, Parser)]
#[command(name = "doctor")]
pub struct DoctorArgs {
    /// The upstream token endpoint to probe (required unless --demo).
    #[arg(
        long,
        env = "BRIDGE_UPSTREAM_TOKEN_URL",
        required_unless_present = "demo"
    )]
    pub upstream_token_url: Option<http::Uri>,

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

    /// Start the embedded demo upstream (the one `bridge` runs without --upstream-token-url)
    /// and probe it, its authorization endpoint included, instead of --upstream-token-url: what
    /// a clean report looks like, in one command.
    #[arg(long)]
    pub demo: bool,

    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,

    /// The deadline answers are held to, in milliseconds (Alexa's: 4500; lower in tests).
    #[arg(long, hide = true, default_value_t = 4500)]
    pub alexa_deadline_ms: u64,
}

/// Runs the probes and judges the upstream (with `--demo`, the embedded demo upstream, started
/// for the run).
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
    let (token_url, authorize_url) = if args.demo {
        let addr = crate::demo::start()
            .await
            .map_err(|e| format!("cannot start the demo upstream: {e}"))?;
        let url = |path: &str| {
            format!("http://{addr}/services/oauth2/{path}")
                .parse::<http::Uri>()
                .expect("a valid URL")
        };
        (url("token"), Some(url("authorize")))
    } else {
        let token_url = args
            .upstream_token_url
            .clone()
            .ok_or("--upstream-token-url URL is required (or --demo)")?;
        (token_url, args.upstream_authorize_url.clone())
    };
    let timeout = Duration::from_secs_f64(args.timeout);
    let upstream = Upstream::try_new(token_url.clone())
        .map_err(|e| e.to_string())?
        .timeout(timeout);
    let mut probes = Vec::with_capacity(probe::PROBES.len());
    for spec in &probe::PROBES {
        probes.push(probe::probe(&upstream, spec, args).await);
    }
    let authorize = match &authorize_url {
        None => None,
        Some(url) => Some(probe::check_authorize(url, timeout).await?),
    };
    Ok(judge::judge(
        args,
        &token_url,
        &configured,
        probes,
        authorize,
    ))
}

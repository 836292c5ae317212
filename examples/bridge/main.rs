//! The standalone bridge: a hyper server in front of an upstream token endpoint.
//!
//! ```text
//! cargo run --release --example bridge -- --help
//! ```
//!
//! With no `--upstream-token-url` it starts an embedded Salesforce-like demo upstream on
//! loopback and prints a `curl` command that performs an Alexa-style exchange against it.

mod demo;
mod serve;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use account_link_bridge::bridge::Bridge;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{ExpiresIn, Provider};
use clap::{Parser, ValueEnum};
use tokio::net::TcpListener;

/// An OAuth 2.0 account-linking bridge between Amazon Alexa and an authorization server that
/// does not speak plain OAuth (Salesforce, GitHub, Slack, ...).
///
/// Routes: POST /token (Alexa's access token URI), GET /healthz.
/// Every option can also be set with the environment variable BRIDGE_<NAME>.
#[derive(Debug, Parser)]
#[command(name = "bridge", version)]
struct Args {
    /// Address to serve on.
    #[arg(long, env = "BRIDGE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,

    /// The upstream token endpoint. Without it, an embedded Salesforce-like demo upstream is
    /// started on loopback.
    #[arg(long, env = "BRIDGE_UPSTREAM_TOKEN_URL")]
    upstream_token_url: Option<http::Uri>,

    /// The provider preset whose quirks to handle: salesforce or generic.
    #[arg(long, env = "BRIDGE_PROVIDER", default_value = "salesforce")]
    provider: String,

    /// The expires_in (seconds) to answer when the upstream gives none. Default: the
    /// provider's (Salesforce: 5400).
    #[arg(long, env = "BRIDGE_EXPIRES_IN")]
    expires_in: Option<u64>,

    /// Timeout of one upstream call, in seconds. Alexa gives the whole token answer 4.5 s:
    /// keep it below that so Alexa hears a JSON error rather than timing out.
    #[arg(long, env = "BRIDGE_UPSTREAM_TIMEOUT", default_value_t = 4.0)]
    upstream_timeout: f64,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "BRIDGE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "BRIDGE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "BRIDGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum)]
enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

fn main() -> ExitCode {
    let args = Args::parse();
    init_logs(args.log_format);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bridge: {message}");
            ExitCode::FAILURE
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

async fn run(args: Args) -> Result<(), String> {
    let mut provider = Provider::by_name(&args.provider).ok_or_else(|| {
        format!(
            "unknown provider {:?}: use salesforce or generic",
            args.provider
        )
    })?;
    if let Some(secs) = args.expires_in {
        provider = provider.expires_in(ExpiresIn::default_secs(secs));
    }
    if !(args.upstream_timeout > 0.0 && args.upstream_timeout.is_finite()) {
        return Err("--upstream-timeout must be a positive number of seconds".into());
    }
    let timeout = Duration::from_secs_f64(args.upstream_timeout);

    let (upstream_url, demo) = match args.upstream_token_url {
        Some(url) => (url, false),
        None => {
            let addr = demo::start()
                .await
                .map_err(|e| format!("cannot start the demo upstream: {e}"))?;
            let url = format!("http://{addr}/services/oauth2/token");
            (url.parse().expect("a valid URL"), true)
        }
    };
    let upstream = Upstream::try_new(upstream_url.clone())
        .map_err(|e| e.to_string())?
        .timeout(timeout);
    let bridge = Bridge::new(provider.clone(), upstream);

    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(serve::tls_acceptor(cert, key)?),
        _ => None,
    };
    let listener = TcpListener::bind(args.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let local = listener
        .local_addr()
        .map_err(|e| format!("cannot read the listening address: {e}"))?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        listen = %local,
        upstream = %upstream_url,
        provider = provider.name(),
        "bridge serving POST {scheme}://{local}/token"
    );
    if demo {
        println!("No --upstream-token-url given: started a Salesforce-like demo upstream at {upstream_url}");
        println!("Try an Alexa-style exchange (JSON, no Content-Type, as Alexa has been seen sending it):");
        println!();
        println!(
            "  curl -s -X POST {scheme}://{local}/token -H 'Content-Type:' \\\n    -d '{{\"grant_type\":\"authorization_code\",\"code\":\"demo-code\",\"client_id\":\"alexa\",\"client_secret\":\"demo-secret\"}}'"
        );
        println!();
    }
    serve::serve(listener, bridge, tls, serve::shutdown_signal()).await;
    Ok(())
}

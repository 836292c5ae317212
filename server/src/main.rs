//! The standalone bridge: a hyper server in front of an upstream token endpoint.
//!
//! ```text
//! cargo run --release --bin bridge -- --help
//! ```
//!
//! With no `--upstream-token-url` it starts an embedded Salesforce-like demo upstream on
//! loopback and prints a `curl` command that performs an Alexa-style exchange against it.
//!
//! `bridge doctor --upstream-token-url URL [--json]` probes an upstream as Alexa would and says
//! whether Alexa can link through it with these settings (exit status 1 when it cannot, or not
//! before the fixes it names); `bridge doctor --demo` probes the embedded demo upstream.

// The command line's doc comments are clap's `--help` text, written for a terminal.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use std::process::ExitCode;

use account_link_bridge_server::config::{self, Args, Endpoints};
use account_link_bridge_server::{checks, demo, doctor, logs, metrics, serve, startup};
use clap::{Parser, Subcommand};
use tokio::net::TcpListener;

/// An OAuth 2.0 account-linking bridge between Amazon Alexa and an authorization server that
/// does not speak plain OAuth (Salesforce, GitHub, Slack, ...).
///
/// Routes: POST /token (Alexa's access token URI), GET /authorize (Alexa's authorization URI)
/// and GET /callback (the redirect URL to register upstream) when an upstream authorization URL
/// is known, and GET /healthz; Prometheus metrics on an admin listener with --metrics-listen.
/// Every option can also be set with the environment variable BRIDGE_<NAME>, e.g.
/// BRIDGE_UPSTREAM_TOKEN_URL.
#[derive(Debug, Parser)]
#[command(name = "bridge", version)]
struct Cli {
    #[command(flatten)]
    args: Args,

    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the bridge (the default).
    Serve,
    /// Probe an upstream token endpoint as Alexa would, with codes that cannot be valid, and
    /// say whether Alexa can link through it, which provider settings fit and what to fix
    /// (--demo: probe the embedded demo upstream).
    Doctor(Box<doctor::DoctorArgs>),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    if let Some(Command::Doctor(doctor)) = &cli.command {
        return match runtime.block_on(doctor::run(doctor)) {
            Ok(report) => {
                if doctor.json {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&report).expect("a report serializes")
                    );
                } else {
                    print!("{}", report.table());
                }
                if report.ready {
                    ExitCode::SUCCESS
                } else {
                    ExitCode::FAILURE
                }
            }
            Err(message) => {
                eprintln!("bridge doctor: {message}");
                ExitCode::from(2)
            }
        };
    }
    let args = cli.args;
    let logs = logs::init(args.log_format, args.trace_exchanges);
    let result = runtime.block_on(run(args));
    // Every queued log line is written before the last word below.
    drop(logs);
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("bridge: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    // Before anything is started or bound, so that the refusal is the only word said.
    checks::refusals(&args)?;
    let (endpoints, demo) = match &args.upstream_token_url {
        Some(url) => (
            Endpoints {
                token_url: url.clone(),
                authorize_url: args.upstream_authorize_url.clone(),
            },
            false,
        ),
        None => {
            let addr = demo::start()
                .await
                .map_err(|e| format!("cannot start the demo upstream: {e}"))?;
            let endpoints = Endpoints {
                token_url: format!("http://{addr}/services/oauth2/token")
                    .parse()
                    .expect("a valid URL"),
                authorize_url: Some(
                    args.upstream_authorize_url
                        .clone()
                        .unwrap_or_else(|| format!("http://{addr}/services/oauth2/authorize")),
                ),
            };
            (endpoints, true)
        }
    };

    let limits = client_limits(&args)?;
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
    let public_url = match &args.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => checks::derived_public_url(scheme, local),
    };
    let bridge = config::build_bridge(&args, &endpoints, &public_url)?;
    for warning in checks::warnings(&args, &public_url) {
        tracing::warn!("{warning}");
    }
    match (args.metrics_listen, args.metrics) {
        (Some(admin), _) => metrics::install(admin)?,
        (None, true) => {
            return Err(
                "--metrics needs --metrics-listen ADDR: metrics are served on an admin \
                        listener of their own, no longer on the public port"
                    .into(),
            )
        }
        (None, false) => {}
    }
    let routes = startup::RouteLines {
        args: &args,
        endpoints: &endpoints,
        demo,
        public_url: &public_url,
        metrics: args.metrics_listen,
        surface: startup::Surface::CommandLine,
    };
    for line in routes.lines() {
        tracing::info!("{line}");
    }
    tracing::info!(
        listen = %local,
        upstream = %endpoints.token_url,
        provider = %args.provider,
        "bridge serving POST {scheme}://{local}/token"
    );
    if demo {
        println!(
            "No --upstream-token-url given: started a Salesforce-like demo upstream at {}",
            endpoints.token_url
        );
        println!("Try an Alexa-style exchange (JSON, no Content-Type, as Alexa has been seen sending it):");
        println!();
        println!(
            "  curl -s -X POST {scheme}://{local}/token -H 'Content-Type:' \\\n    -d '{{\"grant_type\":\"authorization_code\",\"code\":\"demo-code\",\"client_id\":\"alexa\",\"client_secret\":\"demo-secret\"}}'"
        );
        println!();
    }
    serve::serve(listener, bridge, tls, limits, serve::shutdown_signal()).await;
    Ok(())
}

/// The server's limits on clients, from the command line.
fn client_limits(args: &Args) -> Result<serve::ClientLimits, String> {
    let seconds = |name: &str, value: f64| {
        if value > 0.0 && value.is_finite() {
            Ok(std::time::Duration::from_secs_f64(value))
        } else {
            Err(format!("--{name} must be a positive number of seconds"))
        }
    };
    if args.max_connections == 0 {
        return Err("--max-connections must be at least 1".into());
    }
    if args.max_requests_per_connection == 0 {
        return Err("--max-requests-per-connection must be at least 1".into());
    }
    Ok(serve::ClientLimits {
        header_read_timeout: seconds("header-read-timeout", args.header_read_timeout)?,
        body_read_timeout: seconds("body-read-timeout", args.body_read_timeout)?,
        idle_timeout: seconds("idle-timeout", args.idle_timeout)?,
        max_connections: args.max_connections,
        max_requests_per_connection: args.max_requests_per_connection,
    })
}

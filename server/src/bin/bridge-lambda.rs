//! The bridge as an AWS Lambda function: the same routes as the `bridge` binary, configured
//! from the same `BRIDGE_*` environment variables, served through `lambda_http` behind a
//! Function URL, API Gateway (REST or HTTP API) or an ALB.
//!
//! ```text
//! cargo lambda build --release --arm64 -p account-link-bridge-server --bin bridge-lambda --features lambda
//! ```
//!
//! On Lambda there are no flags and no embedded demo upstream:
//!
//! - `BRIDGE_UPSTREAM_TOKEN_URL` is required;
//! - `BRIDGE_UPSTREAM_AUTHORIZE_URL` enables `GET /authorize` and `GET /callback`, and then
//!   `BRIDGE_PUBLIC_URL` (the Function URL or API stage URL, e.g.
//!   `https://abc.lambda-url.eu-west-1.on.aws`) is required too, since there is no listening
//!   address to derive it from, and so is `BRIDGE_STATE_KEY`: Lambda instances come and go, and
//!   a random per-instance key would break links whose callback lands on another instance;
//! - `BRIDGE_LISTEN`, `BRIDGE_TLS_CERT` and `BRIDGE_TLS_KEY` have no meaning (Lambda serves
//!   HTTPS in front of the function) and are refused, and so is `BRIDGE_METRICS_LISTEN` (a
//!   function has no admin port).
//!
//! Refresh records (`BRIDGE_REFRESH_STORE`, `BRIDGE_REFRESH_GRACE`, see the `refresh` module)
//! live in each instance's memory by default: a retry that reaches another instance, or an
//! instance frozen before its upstream call finished, is not covered. Point
//! `BRIDGE_REFRESH_STORE` at a Redis-protocol service the function can reach (ElastiCache or
//! Valkey in the function's VPC, `rediss://` for TLS) and give every instance the same
//! `BRIDGE_STATE_KEY`; build with `--features lambda,redis`.
//!
//! Logs go to stderr, which Lambda sends to CloudWatch; `RUST_LOG` filters them and
//! `BRIDGE_LOG_FORMAT=json` makes them JSON lines. No secret, code or token is ever logged:
//! `lambda_runtime` logs each raw event (Alexa's client secret and code included) at TRACE, so
//! a filter on the subscriber drops the TRACE and DEBUG events of `lambda_runtime` and
//! `lambda_http`, and any of their events with a `body` field, whatever `RUST_LOG` says.

// The command line's doc comments are clap's `--help` text, written for a terminal.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]

use std::process::ExitCode;

use account_link_bridge::lambda::LambdaService;
use account_link_bridge_server::config::{self, Args, Endpoints};
use account_link_bridge_server::{checks, startup};
use clap::Parser;

fn main() -> ExitCode {
    // Environment only: clap reads every `BRIDGE_*` variable, and no flag can be passed.
    let args = Args::parse_from(["lambda"]);
    account_link_bridge_server::logs::init_lambda_logs(args.log_format);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            tracing::error!("lambda: {message}");
            eprintln!("lambda: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> Result<(), String> {
    let bridge = configure(&args)?;
    lambda_http::run(LambdaService::new(bridge))
        .await
        .map_err(|e| format!("the Lambda runtime stopped: {e}"))
}

fn configure(args: &Args) -> Result<account_link_bridge_server::Bridge, String> {
    if args.tls_cert.is_some() || args.tls_key.is_some() {
        return Err(
            "BRIDGE_TLS_CERT and BRIDGE_TLS_KEY have no meaning on Lambda: it serves HTTPS itself"
                .into(),
        );
    }
    if std::env::var_os("BRIDGE_LISTEN").is_some() {
        return Err(format!(
            "BRIDGE_LISTEN ({}) has no meaning on Lambda: unset it",
            args.listen
        ));
    }
    if let Some(admin) = args.metrics_listen {
        return Err(format!(
            "BRIDGE_METRICS_LISTEN ({admin}) has no meaning on Lambda: a function has no admin \
             port; unset it"
        ));
    }
    let token_url = args.upstream_token_url.clone().ok_or(
        "BRIDGE_UPSTREAM_TOKEN_URL is required on Lambda (there is no embedded demo upstream)",
    )?;
    let endpoints = Endpoints {
        token_url,
        authorize_url: args.upstream_authorize_url.clone(),
    };
    let public_url = match (&endpoints.authorize_url, &args.public_url) {
        (_, Some(url)) => url.trim_end_matches('/').to_string(),
        (None, None) => String::new(),
        (Some(_), None) => {
            return Err("BRIDGE_PUBLIC_URL is required with BRIDGE_UPSTREAM_AUTHORIZE_URL: \
                        the Function URL or API stage URL whose /callback the upstream redirects to"
                .into())
        }
    };
    if endpoints.authorize_url.is_some() && args.state_key.is_none() {
        return Err(
            "BRIDGE_STATE_KEY is required with BRIDGE_UPSTREAM_AUTHORIZE_URL on Lambda: \
                    a random per-instance key breaks links whose callback reaches another instance"
                .into(),
        );
    }
    // Refused before the provider hears of a lifetime (it would warn about it too).
    checks::refusals(args)?;
    let bridge = config::build_bridge(args, &endpoints, &public_url)?;
    for warning in checks::warnings(args, &public_url) {
        tracing::warn!("{warning}");
    }
    let routes = startup::RouteLines {
        args,
        endpoints: &endpoints,
        demo: false,
        public_url: if public_url.is_empty() {
            "<function URL>"
        } else {
            &public_url
        },
        metrics: None,
        surface: startup::Surface::Lambda,
    };
    for line in routes.lines() {
        tracing::info!("{line}");
    }
    tracing::info!(
        upstream = %endpoints.token_url,
        provider = %args.provider,
        authorize = endpoints.authorize_url.is_some(),
        "bridge ready on Lambda: POST <function URL>/token"
    );
    Ok(bridge)
}

//! Setting up `tracing`: the filter, the formats, and the Lambda function's subscriber.

use super::text::TextFormat;
use crate::config::LogFormat;

/// `RUST_LOG` (default `info`), with the per-exchange records of `account_link_bridge::trace`
/// on when `trace_exchanges` is set, whatever `RUST_LOG` says.
pub fn log_filter(trace_exchanges: bool) -> tracing_subscriber::EnvFilter {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    if trace_exchanges {
        filter.add_directive(
            "account_link_bridge::trace=debug"
                .parse()
                .expect("a valid directive"),
        )
    } else {
        filter
    }
}

/// Installs the `tracing` subscriber writing to `writer`.
// `bridge`'s; `bridge-lambda` installs its own, with the payload filter.
pub fn install_logs<W>(format: LogFormat, filter: tracing_subscriber::EnvFilter, writer: W)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // Colours only for a terminal: escape codes in a log file or a log service are noise.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(writer);
    match format {
        // `Full`, with the per-exchange line written without `core::fmt` (same bytes).
        LogFormat::Text => builder.event_format(TextFormat::default()).init(),
        LogFormat::Json => builder.json().flatten_event(true).init(),
    }
}

/// Sets up `tracing` output on stderr for a Lambda function, filtered by `RUST_LOG` (default
/// `info`), each line written as it is made (a function is frozen between invocations), with
/// [`is_lambda_runtime_payload`] dropped whatever `RUST_LOG` says.
// `bridge` calls `logs::init`; `bridge-lambda` calls this one.
pub fn init_lambda_logs(format: LogFormat) {
    use tracing_subscriber::layer::{Layer, SubscriberExt};
    use tracing_subscriber::util::SubscriberInitExt;

    let fmt = tracing_subscriber::fmt::layer()
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let fmt = match format {
        LogFormat::Text => fmt.event_format(TextFormat::default()).boxed(),
        LogFormat::Json => fmt.json().flatten_event(true).boxed(),
    };
    // A filter of its own rather than a directive added to RUST_LOG: a more specific directive
    // (`lambda_runtime::layers::api_response=trace`) would win over an added one.
    let no_payloads =
        tracing_subscriber::filter::filter_fn(|metadata| !is_lambda_runtime_payload(metadata));
    tracing_subscriber::registry()
        .with(fmt.with_filter(no_payloads).with_filter(log_filter(false)))
        .init();
}

/// Whether `metadata` is a `lambda_runtime` or `lambda_http` event that may carry the
/// invocation's payload: one of their TRACE or DEBUG events (`lambda_runtime` logs the raw
/// event, client secret and code included, at TRACE), or one with a `body` or `payload` field
/// at any level.
pub fn is_lambda_runtime_payload(metadata: &tracing::Metadata<'_>) -> bool {
    let target = metadata.target();
    let lambda = ["lambda_runtime", "lambda_http"]
        .iter()
        .any(|crate_name| target.starts_with(crate_name));
    lambda
        && metadata.is_event()
        && (*metadata.level() >= tracing::Level::DEBUG
            || metadata
                .fields()
                .iter()
                .any(|field| matches!(field.name(), "body" | "payload")))
}

//! Prometheus metrics on an admin listener of their own (`--metrics-listen`), never on Alexa's
//! port: the library's metrics (feature `metrics`) and the server's, in Prometheus' text format,
//! served by `metrics-exporter-prometheus`'s own HTTP listener on every path.

use std::net::SocketAddr;

/// Installs the Prometheus recorder for this process and starts its HTTP listener on `listen`,
/// on the current tokio runtime. The address is bound before this returns, so a taken or
/// forbidden address is an error at startup, not a silent absence of metrics.
#[cfg(feature = "metrics")]
pub fn install(listen: SocketAddr) -> Result<(), String> {
    metrics_exporter_prometheus::PrometheusBuilder::new()
        .with_http_listener(listen)
        .install()
        .map_err(|e| format!("cannot serve metrics on {listen}: {e}"))
}

/// Without the `metrics` feature there is nothing to serve: an empty page would look like a
/// bridge that does nothing, so asking for one is an error.
#[cfg(not(feature = "metrics"))]
pub fn install(listen: SocketAddr) -> Result<(), String> {
    Err(format!(
        "--metrics-listen {listen} needs the server's `metrics` feature (on by default): \
         cargo install --path server --features metrics"
    ))
}

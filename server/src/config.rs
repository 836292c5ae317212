//! The bridge's configuration: the command-line contract of DESIGN.md, every option also read
//! from `BRIDGE_<NAME>`. Shared by the `bridge` binary (flags and environment) and the
//! `bridge-lambda` binary (environment only), so both build the same routes the same way.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::routes::Bridge;
use account_link_bridge::authorize::{AuthorizeRedirect, StoreNonceCache};
use account_link_bridge::refresh::{MemoryStore, RefreshRecords};
use account_link_bridge::state::StateSealer;
use account_link_bridge::upstream::Upstream;
use account_link_bridge::{provider::ExpiresIn, Provider, TokenExchangeLayer};
use clap::{Parser, ValueEnum};
use tower::Layer;

/// An OAuth 2.0 account-linking bridge between Amazon Alexa and an authorization server that
/// does not speak plain OAuth (Salesforce, GitHub, Slack, ...).
///
/// Routes: POST /token (Alexa's access token URI), GET /authorize (Alexa's authorization URI)
/// and GET /callback (the redirect URL to register upstream) when an upstream authorization URL
/// is known, GET /healthz. Every option can also be set with the environment variable
/// BRIDGE_<NAME>, e.g. BRIDGE_UPSTREAM_TOKEN_URL.
#[derive(Debug, Parser)]
#[command(name = "bridge", version)]
pub struct Args {
    /// Address to serve on.
    #[arg(long, env = "BRIDGE_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// The upstream token endpoint. Without it, an embedded Salesforce-like demo upstream is
    /// started on loopback.
    #[arg(long, env = "BRIDGE_UPSTREAM_TOKEN_URL")]
    pub upstream_token_url: Option<http::Uri>,

    /// The upstream authorization endpoint; enables GET /authorize and GET /callback. Default:
    /// the demo upstream's, when the demo runs.
    #[arg(long, env = "BRIDGE_UPSTREAM_AUTHORIZE_URL")]
    pub upstream_authorize_url: Option<String>,

    /// The provider preset whose quirks to handle: salesforce, github, slack or generic.
    #[arg(long, env = "BRIDGE_PROVIDER", default_value = "salesforce")]
    pub provider: String,

    /// The expires_in (seconds) to answer when the upstream gives none. Default: the
    /// provider's (Salesforce: 5400).
    #[arg(long, env = "BRIDGE_EXPIRES_IN")]
    pub expires_in: Option<u64>,

    /// The bridge's external base URL, whose /callback the upstream redirects to. Default:
    /// http(s)://<listen>.
    #[arg(long, env = "BRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Secrets sealing the OAuth state (base64, at least 32 bytes each), comma-separated,
    /// newest first: the first seals, all open, so keys rotate without breaking links in
    /// flight. Default: a random key per process (flows then break across replicas).
    #[arg(long, env = "BRIDGE_STATE_KEY", hide_env_values = true)]
    pub state_key: Option<String>,

    /// Timeout of one upstream call, in seconds. Alexa gives the whole token answer 4.5 s:
    /// keep it below that so Alexa hears a JSON error rather than timing out.
    #[arg(long, env = "BRIDGE_UPSTREAM_TIMEOUT", default_value_t = 4.0)]
    pub upstream_timeout: f64,

    /// Upstream token calls in flight at once, from /token and from /callback in implicit
    /// mode together; past it the bridge answers 503 JSON at once rather than queue (overload
    /// must not turn into answers later than Alexa's 4.5 s). Counted from the moment Alexa's
    /// whole body has been read, so slow clients hold no place.
    #[arg(long, env = "BRIDGE_MAX_CONCURRENT_EXCHANGES", default_value_t = 1024)]
    pub max_concurrent_exchanges: usize,

    /// Accept a plain http:// upstream token or authorization URL on a host other than
    /// loopback. Without it the bridge refuses to start with one: the client secret and codes
    /// would cross the network in the clear.
    #[arg(long, env = "BRIDGE_ALLOW_INSECURE_UPSTREAM")]
    pub allow_insecure_upstream: bool,

    /// Make a PKCE pair (S256) toward the upstream when Alexa sends no code_challenge. On by
    /// default with --provider salesforce (External Client Apps can require it); this turns it
    /// on for any preset.
    #[arg(long, env = "BRIDGE_PKCE", conflicts_with = "no_pkce")]
    pub pkce: bool,

    /// Never make the bridge's own PKCE pair toward the upstream (Alexa's own still passes
    /// through and is checked). Implicit mode keeps it on regardless.
    #[arg(long, env = "BRIDGE_NO_PKCE")]
    pub no_pkce: bool,

    /// The vendor ids of the Alexa skills served, comma-separated: only
    /// https://<Alexa host>/api/skill/link/<ID> for exactly these ids is accepted as
    /// redirect_uri. Required with a real upstream, unless --allow-any-alexa-skill.
    #[arg(long, env = "BRIDGE_ALEXA_VENDOR_ID", value_delimiter = ',')]
    pub alexa_vendor_id: Vec<String>,

    /// Accept the redirect URL of any Alexa skill (no vendor pin): any other skill could then
    /// send its users through this bridge to your upstream's login and receive their codes.
    #[arg(long, env = "BRIDGE_ALLOW_ANY_ALEXA_SKILL")]
    pub allow_any_alexa_skill: bool,

    /// Also accept this host as an Alexa redirect host (e.g. skills-store.amazon.com); exact,
    /// no wildcards; repeat or comma-separate for several.
    #[arg(long, env = "BRIDGE_ALEXA_REDIRECT_HOST", value_delimiter = ',')]
    pub alexa_redirect_host: Vec<String>,

    /// At POST /token, refuse authorization codes the middleman did not issue. Off by default:
    /// app-to-app linking and links begun before the middleman was on bring codes minted
    /// elsewhere.
    #[arg(long, env = "BRIDGE_REFUSE_PLAIN_CODES")]
    pub refuse_plain_codes: bool,

    /// The grant served to Alexa: code, or implicit (the bridge exchanges the code itself and
    /// answers the token in the URL fragment, for a code-only upstream).
    #[arg(long, env = "BRIDGE_GRANT", value_enum, default_value_t = Grant::Code)]
    pub grant: Grant,

    /// Seconds a client may take to send its request headers before the connection is closed,
    /// so idle or slow clients cannot pin connections: counted from accept to the first
    /// request's headers (TLS handshake and HTTP/2 preface included) and for each later
    /// HTTP/1.1 request head.
    #[arg(long, env = "BRIDGE_HEADER_READ_TIMEOUT", default_value_t = 10.0)]
    pub header_read_timeout: f64,

    /// Seconds a client may take to send a request body once its headers have arrived;
    /// past it the request is answered 400 JSON and the body is no longer read.
    #[arg(long, env = "BRIDGE_BODY_READ_TIMEOUT", default_value_t = 5.0)]
    pub body_read_timeout: f64,

    /// Seconds a connection may stay open with no request in flight after its last answer
    /// (HTTP/1.1 keep-alive and HTTP/2 alike) before the bridge closes it. Before the first
    /// request, --header-read-timeout applies instead.
    #[arg(long, env = "BRIDGE_IDLE_TIMEOUT", default_value_t = 60.0)]
    pub idle_timeout: f64,

    /// Open client connections at most; past it, new connections are closed as soon as they
    /// are accepted (counted in the metrics, logged at most once a second).
    #[arg(long, env = "BRIDGE_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Requests one client connection may carry (HTTP/1.1 keep-alive or HTTP/2 streams); then
    /// the bridge closes it gracefully and the client reconnects.
    #[arg(
        long,
        env = "BRIDGE_MAX_REQUESTS_PER_CONNECTION",
        default_value_t = 10_000
    )]
    pub max_requests_per_connection: usize,

    /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
    #[arg(long, env = "BRIDGE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,

    /// The PEM private key of --tls-cert.
    #[arg(long, env = "BRIDGE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,

    /// Log format.
    #[arg(long, env = "BRIDGE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Log one redacted structured record per exchange and per /authorize or /callback answer
    /// (target account_link_bridge::trace): what Alexa sent, what went upstream, what came
    /// back, what the bridge did, and the latency. Secrets appear only as short keyed
    /// fingerprints.
    #[arg(long, env = "BRIDGE_TRACE_EXCHANGES")]
    pub trace_exchanges: bool,

    /// Serve Prometheus metrics on this admin address (e.g. 127.0.0.1:9090), on a listener of
    /// its own, never on the public port. Off by default.
    #[arg(long, env = "BRIDGE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Kept for older command lines: metrics are served when --metrics-listen is given, and
    /// --metrics alone is refused (metrics are no longer on the public port).
    #[arg(long, env = "BRIDGE_METRICS")]
    pub metrics: bool,

    /// Where refresh records live: memory (this process only), or redis://HOST:PORT[/DB] or
    /// rediss://... (Redis, Valkey, ElastiCache: shared by replicas and Lambda instances, which
    /// must then share --state-key). A record keeps the answer given to a refresh (or code), so
    /// that a lost, late, repeated or concurrent refresh against an upstream that rotates
    /// refresh tokens does not unlink the user.
    #[arg(
        long,
        env = "BRIDGE_REFRESH_STORE",
        default_value = "memory",
        hide_env_values = true
    )]
    pub refresh_store: String,

    /// Seconds a refresh token (or code) presented again gets the answer it already got, as
    /// long as the refresh token that answer handed out is unused. Longer covers later retries
    /// and lets a stolen old token get that answer for longer.
    #[arg(long, env = "BRIDGE_REFRESH_GRACE", default_value_t = 300.0)]
    pub refresh_grace: f64,

    /// Keep no refresh records: every refresh goes upstream, bounded by --upstream-timeout.
    #[arg(long, env = "BRIDGE_NO_REFRESH_RECORDS")]
    pub no_refresh_records: bool,
}

/// The grant served to Alexa.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Grant {
    /// The authorization code grant.
    Code,
    /// The implicit grant, bridged from a code-only upstream.
    Implicit,
}

/// Log output format.
#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// JSON lines.
    Json,
}

/// The upstream endpoints the bridge talks to.
#[derive(Debug)]
pub struct Endpoints {
    /// The token endpoint.
    pub token_url: http::Uri,
    /// The authorization endpoint, if the middleman is enabled.
    pub authorize_url: Option<String>,
}

/// Whether the middleman makes its own PKCE pair toward the upstream: `--pkce` and `--no-pkce`
/// win, otherwise the provider preset says (on for Salesforce).
pub fn pkce_toward_upstream(args: &Args, provider: &Provider) -> bool {
    if args.no_pkce {
        false
    } else {
        args.pkce || provider.settings().pkce()
    }
}

/// Builds the bridge's routes from the configuration. `public_url` is the bridge's external
/// base URL (from `--public-url` or the listening address). Run `checks::refusals` first: an
/// `--expires-in` below Alexa's minimum is refused there, before the provider warns of it.
pub fn build_bridge(
    args: &Args,
    endpoints: &Endpoints,
    public_url: &str,
) -> Result<Bridge, String> {
    let mut provider = Provider::by_name(&args.provider).ok_or_else(|| {
        format!(
            "unknown provider {:?}: use salesforce, github, slack or generic",
            args.provider
        )
    })?;
    if let Some(secs) = args.expires_in {
        provider = provider.expires_in(ExpiresIn::default_secs(secs));
    }
    if !(args.upstream_timeout > 0.0 && args.upstream_timeout.is_finite()) {
        return Err("--upstream-timeout must be a positive number of seconds".into());
    }
    if !args.allow_insecure_upstream {
        refuse_plain_http("upstream token URL", &endpoints.token_url.to_string())?;
        if let Some(url) = &endpoints.authorize_url {
            refuse_plain_http("upstream authorization URL", url)?;
        }
    }
    let answer_deadline = Duration::from_secs_f64(args.upstream_timeout);
    let records = refresh_records(args, answer_deadline)?;
    // With records, --upstream-timeout is Alexa's deadline, applied by the records; the call
    // itself runs on to the records' completion timeout so that its answer can be kept.
    let call_timeout = match &records {
        Some(_) => answer_deadline.max(RefreshRecords::DEFAULT_COMPLETION_TIMEOUT),
        None => answer_deadline,
    };
    // One upstream client, cloned for the implicit grant below: the clones share its bound on
    // calls in flight, so /token and /callback exchanges count against one limit.
    let upstream = Upstream::try_new(endpoints.token_url.clone())
        .map_err(|e| e.to_string())?
        .timeout(call_timeout)
        .max_concurrent_calls(args.max_concurrent_exchanges);
    let with_records = |bridge: Bridge| match &records {
        Some(records) => bridge.refresh_records(records.clone()),
        None => bridge,
    };
    let Some(authorize_url) = &endpoints.authorize_url else {
        if args.grant == Grant::Implicit {
            return Err(
                "--grant implicit (BRIDGE_GRANT) needs --upstream-authorize-url \
                 (BRIDGE_UPSTREAM_AUTHORIZE_URL): the implicit grant is served at /authorize and \
                 /callback, which only the authorization middleman has"
                    .into(),
            );
        }
        return Ok(with_records(Bridge::new(provider, upstream)));
    };
    let vendor_ids: Vec<&str> = listed(&args.alexa_vendor_id).collect();
    // A real upstream's users must not be reachable from any other skill; the embedded demo
    // (no --upstream-token-url) accepts any skill so the quick start works (with a warning).
    if vendor_ids.is_empty() && !args.allow_any_alexa_skill && args.upstream_token_url.is_some() {
        return Err(
            "the authorization middleman needs --alexa-vendor-id ID[,ID] (the vendor id at the \
             end of the skill's Alexa redirect URLs, https://pitangui.amazon.com/api/skill/link/<ID>): \
             without it any Alexa skill could send its users through this bridge and receive \
             their codes; pass --allow-any-alexa-skill to accept that"
                .into(),
        );
    }
    let sealer = match &args.state_key {
        Some(keys) => {
            StateSealer::from_base64_keys(keys).map_err(|e| format!("--state-key: {e}"))?
        }
        None => {
            tracing::warn!(
                "no --state-key: sealing state with a random per-process key; flows will break across replicas and restarts"
            );
            StateSealer::random()
        }
    };
    let mut builder = AuthorizeRedirect::builder()
        .upstream_authorize_url(authorize_url.clone())
        .public_url(public_url.to_string())
        .sealer(sealer)
        .state_key_setting("--state-key (BRIDGE_STATE_KEY)")
        .upstream_token_url(endpoints.token_url.to_string())
        .pkce(pkce_toward_upstream(args, &provider))
        .refuse_plain_codes(args.refuse_plain_codes);
    if !vendor_ids.is_empty() {
        builder = builder.alexa_vendor_ids(vendor_ids);
    }
    // One store for the refresh records and the states' single use: with Redis, a state is
    // accepted once across every replica.
    if let Some(records) = &records {
        builder = builder.nonce_cache(StoreNonceCache::new(Arc::clone(records.store())));
    }
    for host in &args.alexa_redirect_host {
        builder = builder.allow_redirect_host(host.trim());
    }
    if args.grant == Grant::Implicit {
        let upstream = upstream.clone().timeout(answer_deadline);
        builder = builder.implicit(TokenExchangeLayer::new(provider.clone()).layer(upstream));
    }
    let authorize = builder
        .build()
        .map_err(|e| format!("authorization middleman: {e}"))?;
    tracing::info!(
        accepted = %authorize.redirects().accepted().join(" "),
        "Alexa redirect URLs accepted"
    );
    Ok(with_records(Bridge::with_authorize(
        provider, upstream, authorize,
    )))
}

/// The refresh records the options ask for (`None` with --no-refresh-records), logged.
fn refresh_records(
    args: &Args,
    answer_deadline: Duration,
) -> Result<Option<RefreshRecords>, String> {
    if args.no_refresh_records {
        tracing::info!("refresh records off: every refresh goes upstream");
        return Ok(None);
    }
    if !(args.refresh_grace > 0.0 && args.refresh_grace.is_finite()) {
        return Err("--refresh-grace must be a positive number of seconds".into());
    }
    let spec = args.refresh_store.trim();
    let records = if spec == "memory" {
        RefreshRecords::new(MemoryStore::new())
    } else if spec.starts_with("redis://") || spec.starts_with("rediss://") {
        redis_records(spec)?
    } else {
        return Err(
            "--refresh-store must be memory, redis://HOST:PORT[/DB] or rediss://HOST:PORT[/DB]"
                .into(),
        );
    };
    let records = match &args.state_key {
        // Replicas sharing a store must name records alike: the index key derives from the
        // state key they share (the newest one).
        Some(keys) => records.index_key(keys.split(',').next().unwrap_or("").trim().as_bytes()),
        None => {
            if spec != "memory" {
                tracing::warn!(
                    "--refresh-store is shared but there is no --state-key: each process names records with its own random key, so replicas do not see each other's records"
                );
            }
            records
        }
    };
    let records = records
        .grace(Duration::from_secs_f64(args.refresh_grace))
        .answer_deadline(answer_deadline);
    tracing::info!("{}", records.describe());
    Ok(Some(records))
}

#[cfg(feature = "redis")]
fn redis_records(url: &str) -> Result<RefreshRecords, String> {
    let store = account_link_bridge::refresh::RedisStore::open(url)
        .map_err(|e| format!("--refresh-store: {e}"))?;
    Ok(RefreshRecords::new(store))
}

#[cfg(not(feature = "redis"))]
fn redis_records(_url: &str) -> Result<RefreshRecords, String> {
    Err("--refresh-store redis://...: this bridge was built without the `redis` feature".into())
}

/// The values of a repeatable or comma-separated option, trimmed, empty ones left out (an
/// empty `BRIDGE_ALEXA_VENDOR_ID=` names no vendor id).
pub fn listed(values: &[String]) -> impl Iterator<Item = &str> {
    values.iter().map(|v| v.trim()).filter(|v| !v.is_empty())
}

/// Refuses a plain `http://` URL whose host is not loopback: the bridge sends the client
/// secret and codes there (`--allow-insecure-upstream` accepts it, e.g. behind a TLS-terminating
/// sidecar on a private network).
fn refuse_plain_http(name: &str, url: &str) -> Result<(), String> {
    let Ok(parsed) = url::Url::parse(url) else {
        // Not a URL at all: the upstream client or the middleman says why, in its own words.
        return Ok(());
    };
    if parsed.scheme() != "http" {
        return Ok(());
    }
    let loopback = match parsed.host() {
        Some(url::Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    if loopback {
        return Ok(());
    }
    Err(format!(
        "the {name} {url} is plain http on a host that is not loopback: the client secret and codes would cross the network in the clear; use https, or pass --allow-insecure-upstream (BRIDGE_ALLOW_INSECURE_UPSTREAM) if something else encrypts that hop"
    ))
}

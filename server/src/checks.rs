//! Startup checks: settings that would make Alexa fail, said in plain words: refused when
//! nothing could work ([`refusals`]), warned about once at WARN otherwise ([`warnings`]).
//!
//! Both binaries run them: `bridge` through its command line, `bridge-lambda` through the same
//! `BRIDGE_*` variables (its messages name the flags, whose variables are `BRIDGE_<NAME>`).

use std::net::{IpAddr, SocketAddr};
use std::path::Path;

use account_link_bridge::provider::ExpiresIn;

use crate::config::Args;

/// Days of certificate validity left below which the bridge warns.
pub const CERTIFICATE_WARNING_DAYS: i64 = 14;

/// Settings that cannot work, refused before anything starts (the message says what to set).
///
/// - `--expires-in` below Alexa's minimum: Alexa requires access tokens that live at least
///   [`ExpiresIn::ALEXA_MINIMUM_SECS`] (360 s); `0` ("never expires" elsewhere) is below it too;
/// - a `--public-url` whose host is an unspecified address (`0.0.0.0`, `[::]`): nobody can call
///   it, and the upstream would redirect browsers to it.
pub fn refusals(args: &Args) -> Result<(), String> {
    if let Some(secs) = args.expires_in {
        if secs < ExpiresIn::ALEXA_MINIMUM_SECS {
            return Err(format!(
                "--expires-in (BRIDGE_EXPIRES_IN) is {secs} s: Alexa requires access tokens that live at least {min} s (six minutes) and does not refresh a token that expires sooner; set --expires-in {min} or more, or leave it out for the provider's default (Salesforce: 5400)",
                min = ExpiresIn::ALEXA_MINIMUM_SECS
            ));
        }
    }
    if let Some(url) = &args.public_url {
        if host_ip(url).is_some_and(|ip| ip.is_unspecified()) {
            return Err(format!(
                "--public-url (BRIDGE_PUBLIC_URL) {url} has an unspecified address for host: it means every interface to a listener, and nobody can call it; give the https URL Alexa and the upstream reach the bridge at, e.g. https://bridge.example.com"
            ));
        }
    }
    Ok(())
}

/// The bridge's external base URL when no `--public-url` is given: the listening address,
/// except that an unspecified address (`0.0.0.0`, `[::]`, every interface) is no address anyone
/// can call, so `localhost` stands for it (a name, so that a certificate for `localhost` fits,
/// and either stack answers). [`warnings`] says that it was derived and how to set it.
pub fn derived_public_url(scheme: &str, local: SocketAddr) -> String {
    if local.ip().is_unspecified() {
        format!("{scheme}://localhost:{}", local.port())
    } else {
        format!("{scheme}://{local}")
    }
}

/// The warnings for this configuration; `public_url` is the bridge's external base URL (empty
/// when there is none: `bridge-lambda` without the middleman).
pub fn warnings(args: &Args, public_url: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if args.upstream_timeout >= 4.5 {
        warnings.push(format!(
            "--upstream-timeout is {} s: Alexa gives the whole token answer 4.5 s, so a slow upstream makes Alexa time out instead of hearing a JSON error; keep it below 4.5",
            args.upstream_timeout
        ));
    }
    if let Some(warning) = public_url_warning(args, public_url) {
        warnings.push(warning);
    }
    if args.upstream_authorize_url.is_some() || args.upstream_token_url.is_none() {
        if args.allow_any_alexa_skill {
            warnings.push(
                "--allow-any-alexa-skill: the redirect URL of any Alexa skill is accepted, so any other skill can send its users through this bridge to the upstream's login and receive their codes; pin yours with --alexa-vendor-id".into(),
            );
        } else if crate::config::listed(&args.alexa_vendor_id)
            .next()
            .is_none()
        {
            warnings.push(
                "no --alexa-vendor-id: the demo middleman accepts the redirect URL of any Alexa skill; with a real upstream the bridge refuses to start without a pin".into(),
            );
        }
    }
    if args.no_pkce && args.grant == crate::config::Grant::Implicit {
        warnings.push(
            "--no-pkce is ignored with --grant implicit: the bridge always makes its own PKCE pair there, so a stolen upstream code cannot be exchanged at /callback".into(),
        );
    }
    if let Some(cert) = &args.tls_cert {
        if let Some(warning) = certificate_warning(cert, std::time::SystemTime::now()) {
            warnings.push(warning);
        }
    }
    warnings
}

/// One warning naming everything about the public URL that Alexa cannot call: not https, a
/// host that is an IP address (no Amazon-approved authority certifies one for Alexa) or a
/// loopback name, a port other than 443, or a URL derived from an unspecified `--listen`.
fn public_url_warning(args: &Args, public_url: &str) -> Option<String> {
    if public_url.is_empty() {
        return None;
    }
    let Ok(url) = url::Url::parse(public_url) else {
        return Some(format!(
            "the public URL {public_url} is not a URL: the upstream cannot redirect to its /callback; pass --public-url https://bridge.example.com"
        ));
    };
    let mut issues = Vec::new();
    if url.scheme() != "https" {
        issues.push("is not https".to_string());
    }
    match url.host() {
        Some(url::Host::Ipv4(_) | url::Host::Ipv6(_)) => {
            issues.push("has an IP address for host".to_string())
        }
        Some(url::Host::Domain(name)) if name.eq_ignore_ascii_case("localhost") => {
            issues.push("has localhost for host (only this machine reaches it)".into())
        }
        _ => {}
    }
    if let Some(port) = url.port_or_known_default().filter(|p| *p != 443) {
        issues.push(format!("is on port {port}, not 443"));
    }
    if issues.is_empty() {
        return None;
    }
    let derived = match &args.public_url {
        Some(_) => String::new(),
        None if args.listen.ip().is_unspecified() => format!(
            " (derived from --listen {}, every interface, which is no address to call: localhost stands for it)",
            args.listen
        ),
        None => format!(" (derived from --listen {})", args.listen),
    };
    // The quick start (the embedded demo on loopback) trips this warning by design: say so.
    let demo = if args.upstream_token_url.is_none() {
        " (expected while trying the embedded demo on this machine; needed once Alexa calls it)"
    } else {
        ""
    };
    Some(format!(
        "the public URL {public_url} {}{derived}: Alexa calls only https URLs on port 443 whose host is a DNS name with a certificate from an Amazon-approved authority (no such certificate names an IP address), and the upstream sends browsers back to its /callback; pass --public-url https://bridge.example.com, the address Alexa reaches (a load balancer or TLS proxy in front of the bridge, say){demo}",
        issues.join("; ")
    ))
}

/// The host of `url` when it is an IP address.
fn host_ip(url: &str) -> Option<IpAddr> {
    match url::Url::parse(url).ok()?.host()?.to_owned() {
        url::Host::Ipv4(ip) => Some(IpAddr::V4(ip)),
        url::Host::Ipv6(ip) => Some(IpAddr::V6(ip)),
        url::Host::Domain(_) => None,
    }
}

/// A warning when the first certificate of the PEM file at `path` expires within
/// [`CERTIFICATE_WARNING_DAYS`] of `now` (or has expired).
pub fn certificate_warning(path: &Path, now: std::time::SystemTime) -> Option<String> {
    let pem = std::fs::read(path).ok()?;
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).ok()?;
    let certificate = pem.parse_x509().ok()?;
    let not_after = certificate.validity().not_after.timestamp();
    let now = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    let days_left = (not_after - now).div_euclid(24 * 60 * 60);
    if days_left < 0 {
        Some(format!(
            "the TLS certificate {} has expired: Alexa refuses it",
            path.display()
        ))
    } else if days_left < CERTIFICATE_WARNING_DAYS {
        Some(format!(
            "the TLS certificate {} expires in {days_left} days: renew it before Alexa refuses it",
            path.display()
        ))
    } else {
        None
    }
}

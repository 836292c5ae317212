//! Startup checks: settings that would make Alexa fail, said in plain words at WARN.

use std::path::Path;

use account_link_bridge::provider::ExpiresIn;

use crate::config::Args;

/// Days of certificate validity left below which the bridge warns.
pub const CERTIFICATE_WARNING_DAYS: i64 = 14;

/// The warnings for this configuration; `public_url` is the bridge's external base URL.
pub fn warnings(args: &Args, public_url: &str) -> Vec<String> {
    let mut warnings = Vec::new();
    if args.upstream_timeout >= 4.5 {
        warnings.push(format!(
            "--upstream-timeout is {} s: Alexa gives the whole token answer 4.5 s, so a slow upstream makes Alexa time out instead of hearing a JSON error; keep it below 4.5",
            args.upstream_timeout
        ));
    }
    if let Some(secs) = args.expires_in {
        if secs < ExpiresIn::ALEXA_MINIMUM_SECS {
            warnings.push(format!(
                "--expires-in is {secs} s: Alexa needs access tokens that live at least {} s",
                ExpiresIn::ALEXA_MINIMUM_SECS
            ));
        }
    }
    if !public_url.starts_with("https://") {
        warnings.push(format!(
            "the public URL {public_url} is not https: Alexa calls only https endpoints on port 443 with a certificate from an Amazon-approved authority; put the bridge behind TLS or pass --public-url https://..."
        ));
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

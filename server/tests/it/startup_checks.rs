//! The `bridge` binary's startup checks: each setting that would make Alexa fail is said in
//! plain words, and a certificate near its end is noticed.

use testkit as support;

use account_link_bridge_server::{checks, config};

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use config::Args;

fn args(extra: &[&str]) -> Args {
    Args::parse_from(std::iter::once("bridge").chain(extra.iter().copied()))
}

#[test]
fn a_sound_configuration_gets_no_warning() {
    let args = args(&[
        "--upstream-timeout",
        "4",
        "--expires-in",
        "3600",
        "--alexa-vendor-id",
        "M2AAAAAAAAAAAA",
    ]);
    assert!(checks::warnings(&args, "https://bridge.example.com").is_empty());
}

#[test]
fn settings_that_break_alexa_are_each_named() {
    let args = args(&[
        "--upstream-timeout",
        "5",
        "--expires-in",
        "300",
        "--alexa-vendor-id",
        "M2AAAAAAAAAAAA",
    ]);
    let warnings = checks::warnings(&args, "http://127.0.0.1:8080");
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("--upstream-timeout is 5 s"));
    assert!(warnings[1].contains("--expires-in is 300 s"));
    assert!(warnings[2].contains("is not https"));
}

#[test]
fn a_middleman_without_a_vendor_pin_is_warned_about_or_refused() {
    let pinned = |extra: &[&str]| {
        let mut all = vec!["--alexa-vendor-id", "M2AAAAAAAAAAAA"];
        all.extend_from_slice(extra);
        checks::warnings(&args(&all), "https://bridge.example.com")
    };
    assert!(pinned(&[]).is_empty());
    // The demo accepts any skill, with a warning.
    let demo = checks::warnings(&args(&[]), "https://bridge.example.com");
    assert_eq!(demo.len(), 1, "{demo:#?}");
    assert!(demo[0].contains("no --alexa-vendor-id"));
    let any = checks::warnings(
        &args(&["--allow-any-alexa-skill"]),
        "https://bridge.example.com",
    );
    assert!(any[0].contains("--allow-any-alexa-skill"), "{any:#?}");
    // A real upstream refuses to start without a pin.
    let real = args(&[
        "--upstream-token-url",
        "https://login.salesforce.com/services/oauth2/token",
        "--upstream-authorize-url",
        "https://login.salesforce.com/services/oauth2/authorize",
    ]);
    let endpoints = config::Endpoints {
        token_url: real.upstream_token_url.clone().unwrap(),
        authorize_url: real.upstream_authorize_url.clone(),
    };
    let Err(refused) = config::build_bridge(&real, &endpoints, "https://bridge.example.com") else {
        panic!("no pin, no start");
    };
    assert!(refused.contains("--alexa-vendor-id"), "{refused}");
    let mut allowed = real;
    allowed.allow_any_alexa_skill = true;
    assert!(config::build_bridge(&allowed, &endpoints, "https://bridge.example.com").is_ok());
    // --no-pkce cannot turn off implicit mode's PKCE: said at startup.
    let implicit = pinned(&["--grant", "implicit", "--no-pkce"]);
    assert!(
        implicit[0].contains("--no-pkce is ignored"),
        "{implicit:#?}"
    );
}

#[test]
fn pkce_follows_the_preset_unless_an_option_says_otherwise() {
    use account_link_bridge::Provider;
    let on =
        |extra: &[&str], provider: Provider| config::pkce_toward_upstream(&args(extra), &provider);
    assert!(on(&[], Provider::salesforce()));
    assert!(!on(&["--no-pkce"], Provider::salesforce()));
    assert!(!on(&[], Provider::github()));
    assert!(on(&["--pkce"], Provider::github()));
}

#[test]
fn a_certificate_near_or_past_its_end_is_noticed() {
    let pki = support::TestPki::new();
    let (cert, _key) = pki.write_leaf();
    let pem = std::fs::read(&cert).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem).unwrap();
    let not_after = pem.parse_x509().unwrap().validity().not_after.timestamp() as u64;
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(secs);

    assert_eq!(checks::certificate_warning(&cert, SystemTime::now()), None);
    let soon = checks::certificate_warning(&cert, at(not_after - 3 * 86_400 - 3_600)).unwrap();
    assert!(soon.contains("expires in 3 days"), "{soon}");
    let past = checks::certificate_warning(&cert, at(not_after + 86_400)).unwrap();
    assert!(past.contains("has expired"), "{past}");
}

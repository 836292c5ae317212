//! The bridge example's startup checks: each setting that would make Alexa fail is said in
//! plain words, and a certificate near its end is noticed.

mod support;

#[allow(dead_code)]
#[path = "../examples/bridge/config.rs"]
mod config;

#[allow(dead_code)]
#[path = "../examples/bridge/checks.rs"]
mod checks;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::Parser;
use config::Args;

fn args(extra: &[&str]) -> Args {
    Args::parse_from(std::iter::once("bridge").chain(extra.iter().copied()))
}

#[test]
fn a_sound_configuration_gets_no_warning() {
    let args = args(&["--upstream-timeout", "4", "--expires-in", "3600"]);
    assert!(checks::warnings(&args, "https://bridge.example.com").is_empty());
}

#[test]
fn settings_that_break_alexa_are_each_named() {
    let args = args(&["--upstream-timeout", "5", "--expires-in", "300"]);
    let warnings = checks::warnings(&args, "http://127.0.0.1:8080");
    assert_eq!(warnings.len(), 3, "{warnings:#?}");
    assert!(warnings[0].contains("--upstream-timeout is 5 s"));
    assert!(warnings[1].contains("--expires-in is 300 s"));
    assert!(warnings[2].contains("is not https"));
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

//! The `bridge` binary's startup checks: each setting that would make Alexa fail is said in
//! plain words, and a certificate near its end is noticed.

use testkit as support;
use testkit::process::{BridgeProcess, NotServing};

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
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
    assert!(warnings[0].contains("--upstream-timeout is 5 s"));
    // One warning names everything wrong with the public URL.
    assert!(warnings[1].contains("is not https"), "{}", warnings[1]);
    assert!(warnings[1].contains("has an IP address for host"));
    assert!(warnings[1].contains("is on port 8080, not 443"));
    // An --expires-in below Alexa's minimum is no warning but a refusal.
    let refused = checks::refusals(&args).unwrap_err();
    assert!(
        refused.contains("--expires-in (BRIDGE_EXPIRES_IN) is 300 s"),
        "{refused}"
    );
    assert!(refused.contains("at least 360 s"), "{refused}");
    assert!(checks::refusals(&self::args(&["--expires-in", "360"])).is_ok());
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

/// Runs the `bridge` binary with `args` (and `RUST_LOG=info`) until it exits or has started
/// serving; returns its exit status if it exited, and everything it wrote to stderr by then.
pub(crate) fn start_bridge(args: &[&str]) -> (Option<std::process::ExitStatus>, String) {
    let started = BridgeProcess::spawn(
        std::process::Command::new(env!("CARGO_BIN_EXE_bridge"))
            .args(args)
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdout(std::process::Stdio::null()),
    );
    match started {
        // Dropped here: killed once it has said where it serves.
        Ok(bridge) => (None, bridge.log().join("\n")),
        Err(NotServing {
            status: Some(status),
            log,
        }) => (Some(status), log),
        Err(NotServing { status: None, log }) => {
            panic!("the bridge neither served nor exited within 30 s:\n{log}")
        }
    }
}

/// Starts the bridge, which must come up, and returns its log.
fn started(args: &[&str]) -> String {
    let (exited, log) = start_bridge(args);
    assert!(
        exited.is_none(),
        "the bridge did not start: {exited:?}\n{log}"
    );
    log
}

/// The bridge with a loopback upstream that never answers (nothing is exchanged at startup).
fn with_upstream(extra: &[&str]) -> Vec<String> {
    let mut args = vec![
        "--listen".to_string(),
        "127.0.0.1:0".to_string(),
        "--upstream-token-url".to_string(),
        "http://127.0.0.1:9/services/oauth2/token".to_string(),
    ];
    args.extend(extra.iter().map(|a| a.to_string()));
    args
}

fn strs(args: &[String]) -> Vec<&str> {
    args.iter().map(String::as_str).collect()
}

fn count(log: &str, needle: &str) -> usize {
    log.matches(needle).count()
}

#[test]
fn the_startup_log_says_which_routes_are_on_and_why() {
    // A real upstream without an authorization URL: direct mode, said with what to do.
    let log = started(&strs(&with_upstream(&[])));
    assert_eq!(count(&log, "route POST /token on (always)"), 1, "{log}");
    assert_eq!(
        count(
            &log,
            "routes GET /authorize and GET /callback off: no --upstream-authorize-url: Alexa must use the upstream's own authorization URI, direct mode; register Alexa's redirect URLs there"
        ),
        1,
        "{log}"
    );
    assert_eq!(count(&log, "route GET /healthz on (always)"), 1, "{log}");
    assert_eq!(count(&log, "metrics off: no --metrics-listen"), 1, "{log}");
    assert!(!log.contains("grant:"), "{log}");

    // With an authorization URL: the middleman, its callback to register, the grant, metrics.
    // The admin listener binds the address it is given, so the port is a guess: when another
    // server took it meanwhile the bridge exits saying so, and another port is tried.
    let (admin, log) = testkit::net::start_until_bound(|port| {
        let admin = format!("127.0.0.1:{port}");
        let (exited, log) = start_bridge(&strs(&with_upstream(&[
            "--upstream-authorize-url",
            "http://127.0.0.1:9/services/oauth2/authorize",
            "--alexa-vendor-id",
            "M2AAAAAAAAAAAA",
            "--public-url",
            "https://bridge.example.com",
            "--grant",
            "implicit",
            "--metrics-listen",
            &admin,
        ])));
        match exited {
            None => Ok((admin, log)),
            Some(_) if log.contains("cannot serve metrics") => Err(log),
            Some(status) => panic!("the bridge did not start: {status:?}\n{log}"),
        }
    });
    assert_eq!(
        count(
            &log,
            "routes GET /authorize and GET /callback on (authorization middleman), since --upstream-authorize-url is given"
        ),
        1,
        "{log}"
    );
    assert!(
        log.contains(
            "https://bridge.example.com/callback is the redirect URL to register at the upstream"
        ),
        "{log}"
    );
    assert_eq!(
        count(&log, "grant: implicit (--grant implicit)"),
        1,
        "{log}"
    );
    assert_eq!(
        count(
            &log,
            &format!("metrics on the admin listener http://{admin}/metrics")
        ),
        1,
        "{log}"
    );
    assert!(!log.contains(" off"), "{log}");

    // The demo says where its middleman comes from.
    let log = started(&["--listen", "127.0.0.1:0"]);
    assert_eq!(
        count(&log, "since the embedded demo upstream has one"),
        1,
        "{log}"
    );
    assert_eq!(
        count(&log, "grant: authorization code (--grant code)"),
        1,
        "{log}"
    );
}

#[test]
fn an_implicit_grant_without_an_authorization_url_is_refused() {
    let (exited, log) = start_bridge(&strs(&with_upstream(&["--grant", "implicit"])));
    assert!(!exited.expect("refused").success());
    assert!(
        log.contains("--grant implicit (BRIDGE_GRANT) needs --upstream-authorize-url"),
        "{log}"
    );
}

#[test]
fn a_listener_on_every_interface_never_becomes_the_public_url() {
    let pki = support::TestPki::new();
    let (cert, key) = pki.write_leaf();
    // Port 0: the port the bridge chose is read from its serving line.
    let listen = "0.0.0.0:0";
    let log = started(&[
        "--listen",
        listen,
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let port = log
        .split("bridge serving POST https://0.0.0.0:")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("{log}"));
    let public = format!("https://localhost:{port}");
    // The callback the upstream is told about is the derived name, never 0.0.0.0.
    assert!(
        log.contains(&format!(
            "{public}/callback is the redirect URL to register"
        )),
        "{log}"
    );
    // Only the line naming the listening address shows it.
    assert!(
        log.lines()
            .filter(|l| l.contains("0.0.0.0"))
            .all(|l| l.contains("bridge serving POST") || l.contains("derived from --listen")),
        "{log}"
    );
    assert_eq!(count(&log, "the public URL "), 1, "{log}");
    let warning = log.lines().find(|l| l.contains("the public URL ")).unwrap();
    assert!(warning.contains("WARN"), "{warning}");
    assert!(
        warning.contains(&format!("the public URL {public} ")),
        "{warning}"
    );
    assert!(
        warning.contains(&format!("derived from --listen {listen}, every interface")),
        "{warning}"
    );
    assert!(warning.contains("has localhost for host"), "{warning}");
    assert!(
        warning.contains(&format!("is on port {port}, not 443")),
        "{warning}"
    );
    assert!(warning.contains("pass --public-url https://"), "{warning}");
    assert!(!warning.contains("is not https"), "{warning}");
}

#[test]
fn a_public_url_alexa_cannot_call_is_warned_about_once() {
    let log = started(&[
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "https://10.0.0.1/alexa",
    ]);
    assert_eq!(count(&log, "the public URL "), 1, "{log}");
    assert_eq!(count(&log, "has an IP address for host"), 1, "{log}");
    assert!(!log.contains("not 443"), "{log}");
    assert!(!log.contains("derived from"), "{log}");
    // Without --upstream-token-url this is the embedded demo, which the warning says.
    assert_eq!(
        count(&log, "expected while trying the embedded demo"),
        1,
        "{log}"
    );

    let log = started(&[
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "https://bridge.example.com:8443",
    ]);
    assert_eq!(count(&log, "the public URL "), 1, "{log}");
    assert_eq!(count(&log, "is on port 8443, not 443"), 1, "{log}");
    assert!(!log.contains("has an IP address"), "{log}");

    // With a real upstream the warning is not excused as the demo's.
    let log = started(&[
        "--listen",
        "127.0.0.1:0",
        "--upstream-token-url",
        "https://login.example.com/services/oauth2/token",
        "--public-url",
        "https://10.0.0.1",
    ]);
    assert_eq!(count(&log, "has an IP address for host"), 1, "{log}");
    assert!(!log.contains("embedded demo"), "{log}");

    // A URL Alexa can call gets no word.
    let log = started(&[
        "--listen",
        "127.0.0.1:0",
        "--public-url",
        "https://bridge.example.com",
    ]);
    assert_eq!(count(&log, "the public URL "), 0, "{log}");

    // An unspecified address is refused outright.
    let (exited, log) =
        start_bridge(&["--listen", "127.0.0.1:0", "--public-url", "https://0.0.0.0"]);
    assert!(!exited.expect("refused").success());
    assert_eq!(
        count(&log, "has an unspecified address for host"),
        1,
        "{log}"
    );
}

#[test]
fn an_expires_in_below_alexas_minimum_is_refused_at_startup_once() {
    for secs in ["100", "0", "359"] {
        let (exited, log) = start_bridge(&["--listen", "127.0.0.1:0", "--expires-in", secs]);
        let status = exited.unwrap_or_else(|| panic!("--expires-in {secs} started:\n{log}"));
        assert!(!status.success());
        assert_eq!(
            count(
                &log,
                &format!("--expires-in (BRIDGE_EXPIRES_IN) is {secs} s")
            ),
            1,
            "{log}"
        );
        assert_eq!(
            count(
                &log,
                "Alexa requires access tokens that live at least 360 s"
            ),
            1,
            "{log}"
        );
        // Refused before anything else is said or started (no demo, no library warning).
        assert!(!log.contains("360 s Alexa requires"), "{log}");
        assert!(!log.contains("demo"), "{log}");
    }
    let log = started(&["--listen", "127.0.0.1:0", "--expires-in", "360"]);
    assert!(!log.contains("--expires-in"), "{log}");
}

#[cfg(feature = "lambda")]
#[test]
fn the_lambda_function_runs_the_same_checks() {
    let run = |extra: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_bridge-lambda"));
        command
            .env_clear()
            .env("RUST_LOG", "info")
            .env(
                "BRIDGE_UPSTREAM_TOKEN_URL",
                "https://login.example.com/services/oauth2/token",
            )
            // Nothing answers there: a function configured well stops at its first poll.
            .env("AWS_LAMBDA_RUNTIME_API", "127.0.0.1:9");
        for (name, value) in extra {
            command.env(name, value);
        }
        let output = command.output().unwrap();
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let log = run(&[("BRIDGE_EXPIRES_IN", "100")]);
    assert_eq!(
        count(&log, "is 100 s: Alexa requires"),
        2,
        "the error line and stderr:\n{log}"
    );
    assert!(!log.contains("route POST /token"), "{log}");

    let log = run(&[
        (
            "BRIDGE_UPSTREAM_AUTHORIZE_URL",
            "https://login.example.com/services/oauth2/authorize",
        ),
        ("BRIDGE_PUBLIC_URL", "https://10.0.0.1"),
        (
            "BRIDGE_STATE_KEY",
            "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
        ),
        ("BRIDGE_ALEXA_VENDOR_ID", "M2AAAAAAAAAAAA"),
    ]);
    assert_eq!(count(&log, "has an IP address for host"), 1, "{log}");
    assert_eq!(
        count(&log, "since BRIDGE_UPSTREAM_AUTHORIZE_URL is given"),
        1,
        "{log}"
    );
    let log = run(&[]);
    assert_eq!(
        count(&log, "off: no BRIDGE_UPSTREAM_AUTHORIZE_URL: Alexa must use the upstream's own authorization URI"),
        1,
        "{log}"
    );
    assert_eq!(count(&log, "the public URL"), 0, "{log}");
}

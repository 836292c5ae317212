//! The library's integration tests, one binary with a module per subject (one link instead of
//! nine on a 2-core machine). Each talks real HTTP over loopback to real servers.

// The fuzz targets' oracles, shared with `fuzz_corpus` and `never_panic`.
#[path = "../../fuzz/oracles.rs"]
mod oracles;

mod authorize_flow;
mod axum_example;
mod fake_upstream;
mod fuzz_corpus;
mod never_panic;
mod other_languages;
mod providers;
mod proxy_example;
mod skill;
mod skill_verify;
mod token_exchange;
mod tonic;
mod upstream_faults;

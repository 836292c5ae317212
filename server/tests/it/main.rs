//! The server's integration tests, one binary with a module per subject. They serve the routes
//! in-process or start the `bridge` and `bridge-lambda` binaries cargo built for this test run.

mod bad_input;
mod bridge_example;
mod diagnostics;
mod lambda;
mod no_secrets_in_logs;
mod production;
mod refresh;
mod startup_checks;

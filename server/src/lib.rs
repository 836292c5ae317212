//! The account-link-bridge server: the routes, configuration, serving loop, startup checks, logs,
//! metrics and doctor behind the `bridge` and `bridge-lambda` binaries.
//!
//! The library (`account-link-bridge`) is the Tower layers; this crate is the product built from
//! them. Its modules are public so that its tests and benches exercise the very code the binaries
//! run; they are not a stable API.

// The command line's doc comments are clap's `--help` text, written for a terminal:
// `BRIDGE_<NAME>` there is not an HTML tag, nor is a URL meant as a link.
#![allow(rustdoc::invalid_html_tags, rustdoc::bare_urls)]
#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod checks;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod logs;
pub mod metrics;
pub mod routes;
pub mod serve;
pub mod startup;

pub use routes::Bridge;

//! Tower layers that turn any hyper, axum or tonic service into an OAuth 2.0 account-linking
//! bridge between Amazon Alexa and authorization servers that don't speak plain OAuth, such as
//! Salesforce.
//!
//! Alexa links accounts with the authorization code grant: it POSTs the code (later the refresh
//! token) to the skill's *access token URI* and expects RFC 6749 JSON with an integer
//! `expires_in`. Salesforce wants a properly encoded form, answers without `expires_in`, and
//! returns an `instance_url` the skill needs but Alexa would drop. This crate sits between them:
//!
//! - [`NormalizeTokenRequestLayer`](token_request::NormalizeTokenRequestLayer) parses what Alexa sends (form or JSON, with or without
//!   Content-Type, credentials in Basic or the body) and gives the upstream a clean form;
//! - [`RewriteTokenResponseLayer`](token_response::RewriteTokenResponseLayer) turns the upstream's answer into the JSON Alexa needs
//!   (`expires_in` injected, `instance_url` packed into the access token, the refresh token
//!   echoed, errors normalized to RFC 6749 §5.2, `Cache-Control: no-store`);
//! - [`TokenExchangeLayer`] is both, configured from one [`Provider`] preset;
//! - [`AuthorizeRedirect`] is the authorization middleman (`/authorize`, `/callback`): it checks
//!   Alexa's redirect URL, seals the round trip into the OAuth `state` with a [`StateSealer`]
//!   (no server-side session), and hands Alexa a sealed code that [`SealedCodeOpener`](authorize::SealedCodeOpener) redeems
//!   at the token endpoint;
//! - [`refresh`] keeps refresh records, so that a lost, late, repeated or concurrent refresh
//!   against an upstream that rotates refresh tokens never unlinks a user;
//! - [`PackedToken::unpack`] is the exact inverse of the packing, for the skill, and
//!   [`skill`] reads the token from Alexa's request envelopes (with an axum extractor behind
//!   the `axum` feature).
//!
//! # Quick start
//!
//! An axum app whose `/token` route is an Alexa bridge in front of Salesforce. The route's
//! handler stands for the upstream client (the crate's [`upstream`] module, feature `client`).
//!
//! ```
//! use account_link_bridge::{PackedToken, Provider, TokenExchangeLayer};
//! use axum::{body::Body, routing::post, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! // Stands for Salesforce: no expires_in, an instance_url.
//! let salesforce = || async {
//!     (
//!         [("content-type", "application/json")],
//!         r#"{"access_token":"00Dx0!AR8AQ","instance_url":"https://na1.salesforce.com","token_type":"Bearer"}"#,
//!     )
//! };
//! let app = Router::new().route(
//!     "/token",
//!     post(salesforce).route_layer(TokenExchangeLayer::new(Provider::salesforce())),
//! );
//!
//! // Alexa's JSON without a Content-Type:
//! let request = http::Request::post("/token")
//!     .body(Body::from(r#"{"grant_type":"authorization_code","code":"c","client_id":"alexa","client_secret":"s"}"#))
//!     .unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.headers()["cache-control"], "no-store");
//! let body = axum::body::to_bytes(response.into_body(), 4096).await.unwrap();
//! let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(answer["expires_in"], 5400);
//!
//! // In the skill, the exact inverse:
//! let token = PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
//! assert_eq!(token.access_token(), "00Dx0!AR8AQ");
//! assert_eq!(token.instance_url(), Some("https://na1.salesforce.com"));
//! # }
//! ```
//!
//! # In hyper, axum and tonic
//!
//! The layers work on `http::Request<B>` for any body `B: http_body::Body` and keep the inner
//! service's error type, so they fit wherever a Tower service does:
//!
//! - **axum**: `.route_service("/token", ServiceBuilder::new().layer(TokenExchangeLayer::new(..)).service(upstream))`
//!   as above, or `route_layer` on a handler that plays the upstream; `examples/axum.rs` adds a
//!   skill route with the [`skill`] extractor.
//! - **hyper**: the `account-link-bridge-server` crate (`server/` in the repository) is the
//!   `bridge` server: its routes are one service over these layers, served with hyper-util
//!   (HTTP/1.1 and HTTP/2, TLS, graceful shutdown); `examples/proxy.rs` is the same idea in
//!   about a hundred lines.
//! - **tonic**: the exchange is a `tonic::server::NamedService` among a tonic server's routes,
//!   receiving `tonic::body::Body` directly (`tests/it/tonic.rs` serves one with
//!   `tonic::transport::Server` and `accept_http1(true)`, at `/oauth2/token`).
//!
//! # Features
//!
//! | feature | default | what it adds |
//! | --- | --- | --- |
//! | `client` | yes | [`upstream`]: the upstream client service (hyper-util pooled client, rustls, pinned URL, timeout, transport failures as RFC 6749 JSON) |
//! | `metrics` | no | counters and a histogram of exchanges, refusals, upstream latency and errors, and authorize verdicts through the [`metrics`](https://docs.rs/metrics) facade ([`diagnostics`]) |
//! | `axum` | no | `skill::LinkedAccount`: an axum extractor that unpacks the linked account from an Alexa request, or answers the link-account card / smart home `ErrorResponse` |
//! | `verify` | no | `skill::verify`: a layer that verifies each request to a web-service skill comes from Alexa (certificate chain URL rules, the chain checked with `rustls-webpki`, `Signature-256` over the body, the 150 s timestamp, the skill id), as Amazon's certification requires; pulls in `client` |
//! | `redis` | no | `refresh::RedisStore`: refresh records in Redis (Valkey, ElastiCache, any Redis-protocol service), shared by replicas and Lambda instances |
//! | `lambda` | no | `lambda::LambdaService`: serves the bridge (or any service on `http::Request<FullBody>`) as an AWS Lambda function through `lambda_http`, behind API Gateway, a Function URL or an ALB |

#![deny(missing_docs)]
#![forbid(unsafe_code)]
#![deny(unreachable_pub)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

pub mod authorize;
pub mod body;
pub mod diagnostics;
pub mod exchange;
mod fingerprint;
#[cfg(feature = "lambda")]
pub mod lambda;
pub mod oauth;
mod outcome;
pub mod pack;
pub mod provider;
pub mod refresh;
pub mod skill;
pub mod state;
pub mod throttle;
pub mod token_request;
pub mod token_response;
#[cfg(feature = "client")]
pub mod upstream;

// The names nearly every user writes; every other type has one path, under its module.
pub use crate::authorize::AuthorizeRedirect;
pub use crate::body::FullBody;
pub use crate::exchange::TokenExchangeLayer;
pub use crate::oauth::{ErrorCode, OAuthError, TokenRequest};
pub use crate::pack::PackedToken;
pub use crate::provider::Provider;
pub use crate::state::StateSealer;
// The media-type helpers' old paths, for the modules that name them from the root (kept while
// branches written against them land; `media_type` has no user here now).
#[allow(unused_imports)]
pub(crate) use crate::oauth::{content_media_type, json_content_type, media_type};

/// `get_ref`, `get_mut` and `into_inner` for a middleware whose inner service is `self.inner`.
macro_rules! inner_service_accessors {
    () => {
        /// The inner service.
        pub fn get_ref(&self) -> &S {
            &self.inner
        }

        /// The inner service, mutably.
        pub fn get_mut(&mut self) -> &mut S {
            &mut self.inner
        }

        /// Unwraps the inner service.
        pub fn into_inner(self) -> S {
            self.inner
        }
    };
}
pub(crate) use inner_service_accessors;

/// The README's examples, compiled as doctests.
#[cfg(all(doctest, feature = "axum", feature = "verify"))]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

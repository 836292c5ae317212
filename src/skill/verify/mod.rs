//! Request verification for web-service skills (feature `verify`): a skill served from your own
//! HTTPS endpoint must check that each request comes from Alexa, or it fails certification.
//!
//! [`VerifyAlexaRequestLayer`] wraps the skill's route. For each request it checks Amazon's
//! rules ("Manually verify that the request was sent by Alexa") in this order: the headers
//! first (the table's first six rules), so a request that cannot be Alexa's is refused without
//! its body being read; then it buffers the body (at most
//! [`AlexaRequestVerifier::max_body_bytes`], 1 MiB by default; larger or unreadable: rule
//! `body`) and checks the rest:
//!
//! | rule (`rule` of the refusal) | what is checked |
//! | --- | --- |
//! | `signature_cert_chain_url_header` | the `SignatureCertChainUrl` header is present and a URL |
//! | `cert_chain_url_scheme` | after normalization (`.` and `..` resolved), the scheme is `https` (case-insensitive) |
//! | `cert_chain_url_host` | the host is `s3.amazonaws.com` (case-insensitive) |
//! | `cert_chain_url_path` | the path starts with `/echo.api/` (case-sensitive): `/echo.api/../x` and `/ECHO.API/x` are refused |
//! | `cert_chain_url_port` | the port is absent or 443 |
//! | `signature_header` | the `Signature-256` header is present and base64 |
//! | `certificate_fetch` | the PEM chain at the URL could be fetched (a network fault or 5xx also refuses: the request cannot be verified) |
//! | `certificate_chain` | the chain (signing certificate first, then intermediates) leads to a trusted root ([`rustls-webpki`](https://docs.rs/rustls-webpki)) |
//! | `certificate_validity` | every certificate of the chain is valid now |
//! | `certificate_name` | the signing certificate's subject alternative names include `echo-api.amazon.com` |
//! | `signature` | `Signature-256` is the signing certificate's RSA PKCS#1 v1.5 SHA-256 signature of the exact body bytes |
//! | `envelope` | the body is an Alexa request (JSON with `request` or `directive`) |
//! | `timestamp` | `request.timestamp` is within 150 seconds of now, past or future; a skill event (`AlexaSkillEvent.SkillAccountLinked` and the ASK SDKs' four others) may be up to an hour old, as Amazon delivers them up to an hour late |
//! | `skill_id` | with [`AlexaRequestVerifier::skill_ids`]: `context.System.application.applicationId` (else `session.application.applicationId`) is one of them |
//!
//! The body is authenticated (the signature) before anything in it is read. A validated
//! certificate is cached by its normalized URL until the earliest `notAfter` of its chain
//! ([`AlexaRequestVerifier::CERTIFICATE_CACHE_CAPACITY`] URLs at most), so Alexa's requests
//! cost one fetch per certificate, not one per request.
//!
//! A refused request never reaches the inner service: it is answered **400** with
//! `{"error":"alexa_request_not_verified","rule":"…","message":"…"}` (the rule's name from the
//! table, a fixed sentence; nothing of the request is echoed) and logged at INFO with its rule,
//! or at WARN when the chain could not be fetched because of a network fault, a timeout or a 5xx.
//! A verified request goes on with the same body bytes (as [`FullBody`]) and a
//! [`VerifiedAlexaRequest`] in its extensions: the skill id, the timestamp and the parsed
//! envelope. With the `axum` feature, [`LinkedAccount`](crate::skill::LinkedAccount) behind
//! the layer takes that envelope instead of parsing the body a second time.
//!
//! # Example
//!
//! ```
//! use account_link_bridge::skill::verify::{
//!     AlexaRequestVerifier, VerifiedAlexaRequest, VerifyAlexaRequestLayer,
//! };
//! use axum::{routing::post, Extension, Json, Router};
//! use serde_json::{json, Value};
//!
//! async fn skill(Extension(verified): Extension<VerifiedAlexaRequest>) -> Json<Value> {
//!     let kind = verified.envelope().request_type().unwrap_or("request");
//!     let speech = format!("Alexa sent a {kind}");
//!     Json(json!({"version": "1.0", "response": {
//!         "outputSpeech": {"type": "PlainText", "text": speech}, "shouldEndSession": true}}))
//! }
//!
//! let verifier = AlexaRequestVerifier::new().skill_ids(["amzn1.ask.skill.0000"]);
//! // On the skill's route only: the bridge's `/token` is called by Alexa's account linking,
//! // which does not sign its requests.
//! let app: Router = Router::new()
//!     .route("/skill", post(skill).layer(VerifyAlexaRequestLayer::new(verifier)));
//! ```
//!
//! With the `axum` feature, a handler behind the layer takes
//! [`LinkedAccount`](crate::skill::LinkedAccount) just the same.
//!
//! # In tests
//!
//! Nothing here reaches Amazon when the roots and the fetcher are injected: make a root, an
//! intermediate and a signing certificate for `echo-api.amazon.com` (with `rcgen`), give the
//! root to [`AlexaRequestVerifier::root_certificates_pem`] (or
//! [`trust_anchors`](AlexaRequestVerifier::trust_anchors)), and give
//! [`fetcher`](AlexaRequestVerifier::fetcher) a [`CertificateFetcher`] that serves the chain:
//! a fixed one, or one that maps `https://s3.amazonaws.com/echo.api/…` to a loopback server
//! and fetches it with [`HttpCertificateFetcher`] (plain `http` is allowed there for that
//! reason). Sign the body with the signing key (RSA PKCS#1 v1.5, SHA-256), put the base64 in
//! `Signature-256` and `https://s3.amazonaws.com/echo.api/…` in `SignatureCertChainUrl`. The
//! crate's own tests (`tests/it/skill_verify.rs`) do exactly that.

mod certificate;
mod fetch;
mod refusal;
mod service;
mod url;
mod verifier;

pub use self::fetch::{
    CertificateFetcher, FetchError, FetchFuture, FixedChainFetcher, HttpCertificateFetcher,
};
pub use self::refusal::{Refusal, Rule};
pub use self::service::{VerifyAlexaRequest, VerifyAlexaRequestLayer};
pub use self::verifier::{
    AlexaRequestVerifier, InvalidRoots, VerifiedAlexaRequest, SIGNATURE_256,
    SIGNATURE_CERT_CHAIN_URL, SKILL_EVENT_REQUEST_TYPES, SKILL_EVENT_TIMESTAMP_TOLERANCE,
    TIMESTAMP_TOLERANCE,
};

#[cfg(doc)]
use crate::body::FullBody;

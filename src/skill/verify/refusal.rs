//! Why a request was refused, and the 400 answer that says so.

use std::error::Error as StdError;
use std::fmt;

use bytes::Bytes;
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{Response, StatusCode};

use crate::body::FullBody;

/// The verification rule a request broke: the `rule` field of the 400 answer and of the log
/// line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Rule {
    /// The `SignatureCertChainUrl` header is missing or is not a URL.
    SignatureCertChainUrlHeader,
    /// The certificate chain URL's scheme is not `https`.
    CertChainUrlScheme,
    /// The certificate chain URL's host is not `s3.amazonaws.com`.
    CertChainUrlHost,
    /// The certificate chain URL's normalized path does not start with `/echo.api/`.
    CertChainUrlPath,
    /// The certificate chain URL names a port other than 443.
    CertChainUrlPort,
    /// The certificate chain could not be fetched (network, timeout, an HTTP error, too large).
    CertificateFetch,
    /// The certificate chain is not PEM, or does not lead to a trusted root.
    CertificateChain,
    /// A certificate of the chain is expired or not yet valid.
    CertificateValidity,
    /// The signing certificate does not name `echo-api.amazon.com` in its subject alternative
    /// names.
    CertificateName,
    /// The `Signature-256` header is missing or is not base64.
    SignatureHeader,
    /// `Signature-256` is not the signing certificate's RSA-SHA256 signature of the body.
    Signature,
    /// The body could not be read, or is larger than the configured bound.
    Body,
    /// The body is not an Alexa request envelope (JSON with a `request` or `directive`).
    Envelope,
    /// `request.timestamp` is missing, unreadable, or more than 150 seconds from now.
    Timestamp,
    /// The skill id is not one of the configured skill ids.
    SkillId,
}

impl Rule {
    /// The rule's name in the answer and the logs, such as `cert_chain_url_host`.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::SignatureCertChainUrlHeader => "signature_cert_chain_url_header",
            Rule::CertChainUrlScheme => "cert_chain_url_scheme",
            Rule::CertChainUrlHost => "cert_chain_url_host",
            Rule::CertChainUrlPath => "cert_chain_url_path",
            Rule::CertChainUrlPort => "cert_chain_url_port",
            Rule::CertificateFetch => "certificate_fetch",
            Rule::CertificateChain => "certificate_chain",
            Rule::CertificateValidity => "certificate_validity",
            Rule::CertificateName => "certificate_name",
            Rule::SignatureHeader => "signature_header",
            Rule::Signature => "signature",
            Rule::Body => "body",
            Rule::Envelope => "envelope",
            Rule::Timestamp => "timestamp",
            Rule::SkillId => "skill_id",
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request that could not be verified: the rule it broke, a fixed sentence for the answer,
/// and, for the log only, the cause underneath (a webpki or network error).
///
/// Nothing of the request is echoed: neither the sentence nor the answer carries the body,
/// tokens or header values.
#[derive(Clone, Debug)]
pub struct Refusal {
    rule: Rule,
    message: &'static str,
    cause: Option<String>,
    unavailable: bool,
}

impl Refusal {
    pub(crate) fn new(rule: Rule, message: &'static str) -> Self {
        Refusal {
            rule,
            message,
            cause: None,
            unavailable: false,
        }
    }

    /// Adds the cause underneath, for the log line.
    pub(crate) fn because(mut self, cause: impl fmt::Display) -> Self {
        self.cause = Some(cause.to_string());
        self
    }

    /// Marks a refusal that a fault of the path caused (the chain's host unreachable, slow or
    /// failing), which is logged as such (WARN) rather than as a refused request.
    pub(crate) fn unavailable(mut self) -> Self {
        self.unavailable = true;
        self
    }

    /// The rule the request broke.
    pub fn rule(&self) -> Rule {
        self.rule
    }

    /// A sentence saying what was wrong, the `message` of the answer.
    pub fn message(&self) -> &'static str {
        self.message
    }

    /// What lay underneath (a certificate or network error), if anything: logged, never
    /// answered.
    pub fn cause(&self) -> Option<&str> {
        self.cause.as_deref()
    }

    /// Whether the request could not be verified because of a fault on the way to the
    /// certificate chain (network, timeout, the chain host's 5xx) rather than a fault of the
    /// request. Amazon still wants such a request refused.
    pub fn is_unavailable(&self) -> bool {
        self.unavailable
    }

    /// The answer: 400, `{"error":"alexa_request_not_verified","rule":…,"message":…}`.
    pub fn to_response(&self) -> Response<FullBody> {
        let body = serde_json::json!({
            "error": "alexa_request_not_verified",
            "rule": self.rule.as_str(),
            "message": self.message,
        });
        Response::builder()
            .status(StatusCode::BAD_REQUEST)
            .header(CONTENT_TYPE, crate::json_content_type())
            .header(CACHE_CONTROL, "no-store")
            .body(FullBody::new(Bytes::from(body.to_string())))
            .expect("a static status and headers are valid")
    }

    /// Writes the log line: INFO for a refused request, WARN when the chain could not be
    /// fetched because of a fault of the path.
    pub(crate) fn log(&self) {
        let rule = self.rule.as_str();
        let cause = self.cause.as_deref().unwrap_or("");
        if self.unavailable {
            tracing::warn!(
                target: "account_link_bridge::skill::verify",
                rule,
                cause,
                "could not fetch Alexa's signing certificate chain: refused the request as unverifiable (400)"
            );
        } else {
            tracing::info!(
                target: "account_link_bridge::skill::verify",
                rule,
                cause,
                "refused a request that could not be verified as Alexa's (400): {}",
                self.message
            );
        }
    }
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message, self.rule)?;
        if let Some(cause) = &self.cause {
            write!(f, ": {cause}")?;
        }
        Ok(())
    }
}

impl StdError for Refusal {}

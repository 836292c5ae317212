//! The verifier: its configuration, and the checks in the order they run.

use std::fmt;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use base64::Engine as _;
use http::{HeaderMap, Uri};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, TrustAnchor, UnixTime};

use super::certificate::{CertificateCache, SigningCertificate};
use super::fetch::{CertificateFetcher, FetchError, HttpCertificateFetcher};
use super::url::check_cert_chain_url;
use super::{Refusal, Rule};
use crate::skill::AlexaRequest;

/// The header naming the URL of the signing certificate chain.
pub const SIGNATURE_CERT_CHAIN_URL: &str = "signaturecertchainurl";
/// The header carrying the base64 RSA-SHA256 signature of the body.
pub const SIGNATURE_256: &str = "signature-256";
/// How far `request.timestamp` may be from now, either way: Amazon's 150 seconds.
pub const TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(150);
/// How old the `request.timestamp` of a skill event ([`SKILL_EVENT_REQUEST_TYPES`]) may be: one
/// hour. Amazon delivers skill events (`AlexaSkillEvent.SkillAccountLinked` among them) up to an
/// hour after they happened, and the ASK SDKs' timestamp verifiers accept them that late; from
/// the future they get the ordinary [`TIMESTAMP_TOLERANCE`].
pub const SKILL_EVENT_TIMESTAMP_TOLERANCE: Duration = Duration::from_secs(3600);
/// The request types that are skill events, judged by [`SKILL_EVENT_TIMESTAMP_TOLERANCE`]: the
/// ASK SDKs' list, exactly (not every `AlexaSkillEvent.` prefix).
pub const SKILL_EVENT_REQUEST_TYPES: [&str; 5] = [
    "AlexaSkillEvent.SkillEnabled",
    "AlexaSkillEvent.SkillDisabled",
    "AlexaSkillEvent.SkillPermissionChanged",
    "AlexaSkillEvent.SkillPermissionAccepted",
    "AlexaSkillEvent.SkillAccountLinked",
];

/// Checks that a request to a web-service skill comes from Alexa, as Amazon requires: see the
/// [module docs](super) for the rules. Built once, shared by the layer (it holds the
/// certificate cache).
#[derive(Clone)]
pub struct AlexaRequestVerifier {
    anchors: Arc<[TrustAnchor<'static>]>,
    fetcher: Arc<dyn CertificateFetcher>,
    skill_ids: Option<Arc<[String]>>,
    max_body_bytes: usize,
    cache: Arc<CertificateCache>,
}

impl AlexaRequestVerifier {
    /// The default bound on a request body: 1 MiB.
    pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
    /// How many validated certificates are kept (by chain URL) until they expire.
    pub const CERTIFICATE_CACHE_CAPACITY: usize = 16;

    /// A verifier trusting the webpki roots (Mozilla's, which include Amazon's roots), fetching
    /// chains with [`HttpCertificateFetcher`], accepting any skill id.
    pub fn new() -> Self {
        AlexaRequestVerifier {
            anchors: webpki_roots::TLS_SERVER_ROOTS.into(),
            fetcher: Arc::new(HttpCertificateFetcher::new()),
            skill_ids: None,
            max_body_bytes: Self::DEFAULT_MAX_BODY_BYTES,
            cache: Arc::new(CertificateCache::new(Self::CERTIFICATE_CACHE_CAPACITY)),
        }
    }

    /// Accepts only requests for these skills (`amzn1.ask.skill.…`), read from
    /// `context.System.application.applicationId`, else `session.application.applicationId`.
    /// Amazon recommends it; without it any skill's request verifies.
    pub fn skill_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.skill_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Trusts exactly these roots for the certificate chain (instead of the webpki roots).
    pub fn trust_anchors<I>(mut self, anchors: I) -> Self
    where
        I: IntoIterator<Item = TrustAnchor<'static>>,
    {
        self.anchors = anchors.into_iter().collect();
        self.cache = self.fresh_cache();
        self
    }

    /// Trusts exactly the root certificates in this PEM (one or more `CERTIFICATE` blocks), as
    /// a test PKI hands them out.
    pub fn root_certificates_pem(self, pem: &[u8]) -> Result<Self, InvalidRoots> {
        let anchors = CertificateDer::pem_slice_iter(pem)
            .map(|certificate| {
                let certificate = certificate.map_err(|e| InvalidRoots(e.to_string()))?;
                webpki::anchor_from_trusted_cert(&certificate)
                    .map(|anchor| anchor.to_owned())
                    .map_err(|e| InvalidRoots(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if anchors.is_empty() {
            return Err(InvalidRoots("no certificate in the PEM".into()));
        }
        Ok(self.trust_anchors(anchors))
    }

    /// Fetches certificate chains with this fetcher (a test's, or an
    /// [`HttpCertificateFetcher`] with another timeout or TLS configuration).
    pub fn fetcher(mut self, fetcher: impl CertificateFetcher) -> Self {
        self.fetcher = Arc::new(fetcher);
        self.cache = self.fresh_cache();
        self
    }

    /// Bounds the request body the layer buffers, in bytes; a larger body is refused.
    pub fn max_body_bytes(mut self, max: usize) -> Self {
        self.max_body_bytes = max;
        self
    }

    /// The bound on the request body, in bytes.
    pub fn body_limit(&self) -> usize {
        self.max_body_bytes
    }

    /// A cache of its own: certificates validated under other roots or fetched by another
    /// fetcher must not be trusted under the new ones.
    fn fresh_cache(&self) -> Arc<CertificateCache> {
        Arc::new(CertificateCache::new(Self::CERTIFICATE_CACHE_CAPACITY))
    }

    /// Verifies a request from its headers and exact body bytes, as the layer does; usable on
    /// its own where a Tower layer does not fit (a Lambda handler, another framework).
    pub async fn verify(
        &self,
        headers: &HeaderMap,
        body: &[u8],
    ) -> Result<VerifiedAlexaRequest, Refusal> {
        let signed = self.check_headers(headers)?;
        self.verify_body(signed, body).await
    }

    /// The checks that need no body: the chain URL's rules and the signature's encoding. The
    /// layer runs them before it reads the body, so a request that cannot be Alexa's costs
    /// neither a body read nor a fetch.
    pub(crate) fn check_headers(&self, headers: &HeaderMap) -> Result<SignatureHeaders, Refusal> {
        let chain_url = header(headers, SIGNATURE_CERT_CHAIN_URL).ok_or_else(|| {
            Refusal::new(
                Rule::SignatureCertChainUrlHeader,
                "the SignatureCertChainUrl header is missing",
            )
        })?;
        let chain_url = check_cert_chain_url(chain_url)?;
        let signature = header(headers, SIGNATURE_256).ok_or_else(|| {
            Refusal::new(Rule::SignatureHeader, "the Signature-256 header is missing")
        })?;
        let signature = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|e| {
                Refusal::new(
                    Rule::SignatureHeader,
                    "the Signature-256 header is not base64",
                )
                .because(e)
            })?;
        Ok(SignatureHeaders {
            chain_url: chain_url.into(),
            signature,
        })
    }

    /// The checks of the body, once [`check_headers`](Self::check_headers) passed.
    pub(crate) async fn verify_body(
        &self,
        signed: SignatureHeaders,
        body: &[u8],
    ) -> Result<VerifiedAlexaRequest, Refusal> {
        let SignatureHeaders {
            chain_url,
            signature,
        } = signed;
        // The body is authenticated before anything in it is believed.
        let certificate = self.signing_certificate(&chain_url).await?;
        certificate.verify_signature(body, &signature)?;

        let envelope = AlexaRequest::from_slice(body).map_err(|e| {
            Refusal::new(Rule::Envelope, "the body is not an Alexa request").because(e)
        })?;
        let timestamp = check_timestamp(&envelope, SystemTime::now())?;
        let application_id = application_id(&envelope).map(str::to_owned);
        if let Some(allowed) = &self.skill_ids {
            if !application_id
                .as_deref()
                .is_some_and(|id| allowed.iter().any(|a| a == id))
            {
                return Err(Refusal::new(
                    Rule::SkillId,
                    "the request is not for this skill",
                ));
            }
        }
        Ok(VerifiedAlexaRequest {
            application_id,
            timestamp,
            envelope: Arc::new(envelope),
        })
    }

    /// The validated signing certificate for a checked chain URL, from the cache or fetched.
    async fn signing_certificate(&self, url: &str) -> Result<Arc<SigningCertificate>, Refusal> {
        let now = UnixTime::now();
        if let Some(certificate) = self.cache.get(url, now) {
            return Ok(certificate);
        }
        let uri: Uri = url.parse().map_err(|e| {
            Refusal::new(
                Rule::SignatureCertChainUrlHeader,
                "the SignatureCertChainUrl header is not a URL",
            )
            .because(e)
        })?;
        let pem = self.fetcher.fetch(&uri).await.map_err(|e| {
            let refusal = Refusal::new(
                Rule::CertificateFetch,
                "the certificate chain could not be fetched",
            );
            match e {
                FetchError::Unavailable(_) => refusal.because(e).unavailable(),
                _ => refusal.because(e),
            }
        })?;
        let certificate = Arc::new(SigningCertificate::from_chain_pem(
            &pem,
            &self.anchors,
            now,
        )?);
        self.cache
            .insert(url.to_owned(), Arc::clone(&certificate), now);
        Ok(certificate)
    }
}

/// A request's signature headers once checked: the normalized chain URL and the decoded
/// signature.
#[derive(Debug)]
pub(crate) struct SignatureHeaders {
    chain_url: String,
    signature: Vec<u8>,
}

impl Default for AlexaRequestVerifier {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for AlexaRequestVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AlexaRequestVerifier")
            .field("trust_anchors", &self.anchors.len())
            .field("skill_ids", &self.skill_ids)
            .field("max_body_bytes", &self.max_body_bytes)
            .finish_non_exhaustive()
    }
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.trim().is_empty())
}

/// `request.timestamp`, which must be within [`TIMESTAMP_TOLERANCE`] of `now`, either way (a
/// skill event may be up to [`SKILL_EVENT_TIMESTAMP_TOLERANCE`] old).
fn check_timestamp(envelope: &AlexaRequest, now: SystemTime) -> Result<SystemTime, Refusal> {
    let text = envelope
        .request
        .as_ref()
        .and_then(|r| r.timestamp.as_deref())
        .ok_or_else(|| Refusal::new(Rule::Timestamp, "the request has no request.timestamp"))?;
    let parsed = time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
        .map_err(|e| {
            Refusal::new(Rule::Timestamp, "request.timestamp is not an ISO 8601 time").because(e)
        })?;
    let timestamp = SystemTime::from(parsed);
    let skill_event = envelope
        .request_type()
        .is_some_and(|kind| SKILL_EVENT_REQUEST_TYPES.contains(&kind));
    let (off, tolerance, message) = match now.duration_since(timestamp) {
        Ok(past) if skill_event => (
            past,
            SKILL_EVENT_TIMESTAMP_TOLERANCE,
            "the skill event's request.timestamp is more than an hour old",
        ),
        Ok(past) => (
            past,
            TIMESTAMP_TOLERANCE,
            "request.timestamp is more than 150 seconds from now",
        ),
        Err(future) => (
            future.duration(),
            TIMESTAMP_TOLERANCE,
            "request.timestamp is more than 150 seconds from now",
        ),
    };
    if off > tolerance {
        return Err(
            Refusal::new(Rule::Timestamp, message).because(format_args!("{} s off", off.as_secs()))
        );
    }
    Ok(timestamp)
}

/// The skill id: `context.System.application.applicationId`, else
/// `session.application.applicationId`.
fn application_id(envelope: &AlexaRequest) -> Option<&str> {
    let system = envelope
        .context
        .as_ref()
        .and_then(|c| c.system.as_ref())
        .and_then(|s| s.application.as_ref());
    let session = envelope
        .session
        .as_ref()
        .and_then(|s| s.application.as_ref());
    [system, session]
        .into_iter()
        .flatten()
        .find_map(|a| a.application_id.as_deref().filter(|id| !id.is_empty()))
}

/// Why [`AlexaRequestVerifier::root_certificates_pem`] could not read the roots.
#[derive(Clone, Debug)]
pub struct InvalidRoots(String);

impl fmt::Display for InvalidRoots {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid root certificates: {}", self.0)
    }
}

impl std::error::Error for InvalidRoots {}

/// The record a verified request carries in its extensions: the layer ran, and this is what it
/// read from the authenticated body.
///
/// With the `axum` feature, [`LinkedAccount`](crate::skill::LinkedAccount) takes the envelope
/// from it instead of parsing the body again; a handler can also extract it with
/// `axum::Extension<VerifiedAlexaRequest>`.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct VerifiedAlexaRequest {
    application_id: Option<String>,
    timestamp: SystemTime,
    envelope: Arc<AlexaRequest>,
}

impl VerifiedAlexaRequest {
    /// The skill id the request was for, if it named one.
    pub fn application_id(&self) -> Option<&str> {
        self.application_id.as_deref()
    }

    /// `request.timestamp`: when Alexa sent the request.
    pub fn timestamp(&self) -> SystemTime {
        self.timestamp
    }

    /// The request envelope, parsed from the verified body.
    pub fn envelope(&self) -> &AlexaRequest {
        &self.envelope
    }

    /// The envelope, without a copy when this record holds the only reference.
    pub fn into_envelope(self) -> AlexaRequest {
        Arc::try_unwrap(self.envelope).unwrap_or_else(|shared| (*shared).clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn envelope_at(timestamp: &str) -> AlexaRequest {
        envelope_of("LaunchRequest", timestamp)
    }

    fn envelope_of(kind: &str, timestamp: &str) -> AlexaRequest {
        let body = serde_json::json!({
            "version": "1.0",
            "request": {"type": kind, "timestamp": timestamp},
        });
        AlexaRequest::from_slice(body.to_string().as_bytes()).unwrap()
    }

    #[test]
    fn a_skill_event_may_be_an_hour_old_but_no_more_and_not_from_the_future() {
        let now = SystemTime::from(
            time::OffsetDateTime::parse(
                "2026-01-01T12:00:00Z",
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap(),
        );
        for (kind, timestamp, within) in [
            (
                "AlexaSkillEvent.SkillAccountLinked",
                "2026-01-01T11:00:00Z",
                true,
            ),
            ("AlexaSkillEvent.SkillEnabled", "2026-01-01T11:30:00Z", true),
            (
                "AlexaSkillEvent.SkillAccountLinked",
                "2026-01-01T10:59:59Z",
                false,
            ),
            (
                "AlexaSkillEvent.SkillAccountLinked",
                "2026-01-01T12:02:31Z",
                false,
            ),
            // Only the SDKs' five types, not any AlexaSkillEvent. prefix, nor other requests.
            (
                "AlexaSkillEvent.SomethingNew",
                "2026-01-01T11:30:00Z",
                false,
            ),
            ("IntentRequest", "2026-01-01T11:30:00Z", false),
        ] {
            let verdict = check_timestamp(&envelope_of(kind, timestamp), now);
            assert_eq!(verdict.is_ok(), within, "{kind} {timestamp}: {verdict:?}");
        }
    }

    #[test]
    fn the_timestamp_window_is_150_seconds_either_way() {
        let now = SystemTime::from(
            time::OffsetDateTime::parse(
                "2026-01-01T12:00:00Z",
                &time::format_description::well_known::Rfc3339,
            )
            .unwrap(),
        );
        for (timestamp, within) in [
            ("2026-01-01T12:00:00Z", true),
            ("2026-01-01T11:57:30Z", true),
            ("2026-01-01T12:02:30Z", true),
            ("2026-01-01T12:02:30.000Z", true),
            ("2026-01-01T11:57:29Z", false),
            ("2026-01-01T12:02:31Z", false),
            ("2026-01-01T13:00:00+01:00", true),
            ("yesterday", false),
        ] {
            let verdict = check_timestamp(&envelope_at(timestamp), now);
            assert_eq!(verdict.is_ok(), within, "{timestamp}: {verdict:?}");
        }
    }
}

//! The signing certificate: the chain validated with `rustls-webpki`, the name and validity
//! read with `x509-parser`, and the cache that keeps it until it expires.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, SignatureVerificationAlgorithm, TrustAnchor, UnixTime};
use webpki::{EndEntityCert, ExtendedKeyUsageValidator, KeyPurposeIdIter};

use super::{Refusal, Rule};

/// The name Amazon's signing certificate must carry in its subject alternative names.
pub(crate) const ECHO_API_NAME: &str = "echo-api.amazon.com";

/// The signature algorithms accepted on the chain's certificates (those the TLS web PKI uses).
static CHAIN_ALGORITHMS: &[&dyn SignatureVerificationAlgorithm] = &[
    webpki::ring::ECDSA_P256_SHA256,
    webpki::ring::ECDSA_P256_SHA384,
    webpki::ring::ECDSA_P384_SHA256,
    webpki::ring::ECDSA_P384_SHA384,
    webpki::ring::ED25519,
    webpki::ring::RSA_PKCS1_2048_8192_SHA256,
    webpki::ring::RSA_PKCS1_2048_8192_SHA384,
    webpki::ring::RSA_PKCS1_2048_8192_SHA512,
    webpki::ring::RSA_PKCS1_3072_8192_SHA384,
    webpki::ring::RSA_PSS_2048_8192_SHA256_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA384_LEGACY_KEY,
    webpki::ring::RSA_PSS_2048_8192_SHA512_LEGACY_KEY,
];

/// Accepts any extended key usage that is well-formed. Amazon's rules name no purpose for the
/// signing certificate (nor do the ASK SDKs' PKIX checks), so requiring one (webpki's
/// `server_auth`) could refuse Alexa's genuine requests the day Amazon's certificate changes.
struct AnyKeyPurpose;

impl ExtendedKeyUsageValidator for AnyKeyPurpose {
    fn validate(&self, mut purposes: KeyPurposeIdIter<'_, '_>) -> Result<(), webpki::Error> {
        purposes.try_for_each(|purpose| purpose.map(drop))
    }
}

/// A signing certificate whose chain was validated, and until when that holds.
#[derive(Debug)]
pub(crate) struct SigningCertificate {
    der: CertificateDer<'static>,
    /// The earliest `notAfter` of the chain, in seconds since the Unix epoch.
    valid_until: u64,
}

impl SigningCertificate {
    /// Parses the PEM chain at the certificate URL (the signing certificate first, then the
    /// intermediates), validates it to one of `anchors` at `now`, and checks the signing
    /// certificate's name.
    pub(crate) fn from_chain_pem(
        pem: &[u8],
        anchors: &[TrustAnchor<'static>],
        now: UnixTime,
    ) -> Result<Self, Refusal> {
        let not_pem = || {
            Refusal::new(
                Rule::CertificateChain,
                "the certificate chain is not a PEM certificate chain",
            )
        };
        let chain = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| not_pem().because(e))?;
        let (signing, intermediates) = chain.split_first().ok_or_else(not_pem)?;
        let end_entity = end_entity(signing)?;
        end_entity
            .verify_for_usage(
                CHAIN_ALGORITHMS,
                anchors,
                intermediates,
                now,
                AnyKeyPurpose,
                None,
                None,
            )
            .map_err(|e| match e {
                webpki::Error::CertExpired { .. } | webpki::Error::CertNotValidYet { .. } => {
                    Refusal::new(
                        Rule::CertificateValidity,
                        "a certificate of the chain is expired or not yet valid",
                    )
                    .because(e)
                }
                _ => Refusal::new(
                    Rule::CertificateChain,
                    "the certificate chain does not lead to a trusted root",
                )
                .because(e),
            })?;
        if !names_echo_api(signing)? {
            return Err(Refusal::new(
                Rule::CertificateName,
                "the signing certificate's subject alternative names lack echo-api.amazon.com",
            ));
        }
        let valid_until = chain
            .iter()
            .map(not_after)
            .try_fold(u64::MAX, |earliest, t| t.map(|t| earliest.min(t)))?;
        Ok(SigningCertificate {
            der: signing.clone().into_owned(),
            valid_until,
        })
    }

    /// Checks `signature` (RSA PKCS#1 v1.5 with SHA-256, as `Signature-256` is) over the exact
    /// `body` with the certificate's public key.
    pub(crate) fn verify_signature(&self, body: &[u8], signature: &[u8]) -> Result<(), Refusal> {
        let end_entity = end_entity(&self.der)?;
        end_entity
            .verify_signature(webpki::ring::RSA_PKCS1_2048_8192_SHA256, body, signature)
            .map_err(|e| {
                Refusal::new(
                    Rule::Signature,
                    "Signature-256 is not Alexa's signature of this body",
                )
                .because(e)
            })
    }

    fn is_valid_at(&self, now: UnixTime) -> bool {
        now.as_secs() <= self.valid_until
    }
}

/// Whether the certificate's subject alternative names include `echo-api.amazon.com` itself
/// (Amazon asks for that name to be present, so a wildcard does not count).
fn names_echo_api(certificate: &CertificateDer<'_>) -> Result<bool, Refusal> {
    let unreadable = |e: String| {
        Refusal::new(
            Rule::CertificateChain,
            "the signing certificate cannot be read",
        )
        .because(e)
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(certificate).map_err(|e| unreadable(e.to_string()))?;
    let names = parsed
        .subject_alternative_name()
        .map_err(|e| unreadable(e.to_string()))?;
    Ok(names.is_some_and(|names| {
        names.value.general_names.iter().any(|name| {
            matches!(name, x509_parser::extensions::GeneralName::DNSName(dns)
                if dns.eq_ignore_ascii_case(ECHO_API_NAME))
        })
    }))
}

/// A certificate's `notAfter`, in seconds since the Unix epoch.
fn not_after(certificate: &CertificateDer<'_>) -> Result<u64, Refusal> {
    let (_, parsed) = x509_parser::parse_x509_certificate(certificate).map_err(|e| {
        Refusal::new(
            Rule::CertificateChain,
            "a certificate of the chain cannot be read",
        )
        .because(e)
    })?;
    // A notAfter before 1970 would have failed validation already.
    Ok(u64::try_from(parsed.validity().not_after.timestamp()).unwrap_or(0))
}

/// Validated signing certificates by normalized chain URL, each kept until the earliest
/// `notAfter` of its chain, at most `capacity` of them.
///
/// Only chains that validated are kept, so a flood of requests naming other URLs under
/// `/echo.api/` cannot fill it with garbage; when it is full, the entry that expires first
/// makes room (Alexa uses one URL at a time, rotating it before the certificate expires).
#[derive(Debug)]
pub(crate) struct CertificateCache {
    entries: Mutex<HashMap<String, Arc<SigningCertificate>>>,
    capacity: usize,
}

impl CertificateCache {
    pub(crate) fn new(capacity: usize) -> Self {
        CertificateCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The certificate validated for `url`, if it is still valid at `now`.
    pub(crate) fn get(&self, url: &str, now: UnixTime) -> Option<Arc<SigningCertificate>> {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        match entries.get(url) {
            Some(certificate) if certificate.is_valid_at(now) => Some(Arc::clone(certificate)),
            Some(_) => {
                entries.remove(url);
                None
            }
            None => None,
        }
    }

    pub(crate) fn insert(&self, url: String, certificate: Arc<SigningCertificate>, now: UnixTime) {
        if self.capacity == 0 {
            return;
        }
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        entries.retain(|_, certificate| certificate.is_valid_at(now));
        if entries.len() >= self.capacity && !entries.contains_key(&url) {
            let first_to_expire = entries
                .iter()
                .min_by_key(|(_, certificate)| certificate.valid_until)
                .map(|(url, _)| url.clone());
            if let Some(first_to_expire) = first_to_expire {
                entries.remove(&first_to_expire);
            }
        }
        entries.insert(url, certificate);
    }
}

/// The signing certificate as webpki reads it.
fn end_entity<'a>(der: &'a CertificateDer<'a>) -> Result<EndEntityCert<'a>, Refusal> {
    EndEntityCert::try_from(der).map_err(|e| {
        Refusal::new(
            Rule::CertificateChain,
            "the signing certificate cannot be read",
        )
        .because(e)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn certificate(valid_until: u64) -> Arc<SigningCertificate> {
        Arc::new(SigningCertificate {
            der: CertificateDer::from(vec![]),
            valid_until,
        })
    }

    fn at(secs: u64) -> UnixTime {
        UnixTime::since_unix_epoch(std::time::Duration::from_secs(secs))
    }

    #[test]
    fn an_entry_is_kept_until_its_chain_expires_and_dropped_after() {
        let cache = CertificateCache::new(16);
        cache.insert("a".into(), certificate(100), at(0));
        assert!(cache.get("a", at(100)).is_some());
        assert!(cache.get("a", at(101)).is_none());
        assert!(cache.get("a", at(0)).is_none(), "the expired entry is gone");
    }

    #[test]
    fn a_full_cache_makes_room_by_dropping_the_entry_that_expires_first() {
        let cache = CertificateCache::new(2);
        cache.insert("soon".into(), certificate(10), at(0));
        cache.insert("late".into(), certificate(1000), at(0));
        cache.insert("new".into(), certificate(500), at(0));
        assert!(cache.get("soon", at(1)).is_none());
        assert!(cache.get("late", at(1)).is_some());
        assert!(cache.get("new", at(1)).is_some());
    }
}

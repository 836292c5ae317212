//! Amazon's rules for the `SignatureCertChainUrl` header.

use url::Url;

use super::{Refusal, Rule};

/// The only host Amazon serves the signing certificate chain from.
const CERT_CHAIN_HOST: &str = "s3.amazonaws.com";
/// The path the chain lives under (case-sensitive, after normalization).
const CERT_CHAIN_PATH_PREFIX: &str = "/echo.api/";

/// Checks a `SignatureCertChainUrl` value and returns it normalized, the form that is fetched
/// and cached.
///
/// The URL is normalized first (the WHATWG parser lowercases the scheme and host, drops a
/// default port and resolves `.` and `..` segments, also percent-encoded ones), so that
/// `https://s3.amazonaws.com/echo.api/../evil/cert.pem` is judged by the path it really names.
pub(crate) fn check_cert_chain_url(value: &str) -> Result<Url, Refusal> {
    let url = Url::parse(value.trim()).map_err(|_| {
        Refusal::new(
            Rule::SignatureCertChainUrlHeader,
            "the SignatureCertChainUrl header is not a URL",
        )
    })?;
    if url.scheme() != "https" {
        return Err(Refusal::new(
            Rule::CertChainUrlScheme,
            "the certificate chain URL's scheme is not https",
        ));
    }
    if url.host_str() != Some(CERT_CHAIN_HOST) {
        return Err(Refusal::new(
            Rule::CertChainUrlHost,
            "the certificate chain URL's host is not s3.amazonaws.com",
        ));
    }
    if !url.path().starts_with(CERT_CHAIN_PATH_PREFIX) {
        return Err(Refusal::new(
            Rule::CertChainUrlPath,
            "the certificate chain URL's path does not start with /echo.api/",
        ));
    }
    // `port()` is `None` for the scheme's default, so `:443` written out is accepted.
    if url.port().is_some() {
        return Err(Refusal::new(
            Rule::CertChainUrlPort,
            "the certificate chain URL's port is not 443",
        ));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Amazon's own examples of URLs to accept and to refuse ("Verify the signature certificate
    /// URL"), and the normalizations they imply.
    #[test]
    fn amazons_examples_are_judged_as_amazon_says() {
        let accepted = [
            "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
            "https://s3.amazonaws.com:443/echo.api/echo-api-cert.pem",
            "https://s3.amazonaws.com/echo.api/../echo.api/echo-api-cert.pem",
            "HTTPS://S3.AMAZONAWS.COM/echo.api/echo-api-cert.pem",
            "https://s3.Amazonaws.com/echo.api/%2e%2e/echo.api/echo-api-cert.pem",
        ];
        for url in accepted {
            let normalized = check_cert_chain_url(url)
                .unwrap_or_else(|r| panic!("{url} refused: {r}"))
                .to_string();
            assert_eq!(
                normalized, "https://s3.amazonaws.com/echo.api/echo-api-cert.pem",
                "{url}"
            );
        }
        let refused = [
            (
                "http://s3.amazonaws.com/echo.api/echo-api-cert.pem",
                Rule::CertChainUrlScheme,
            ),
            (
                "https://notamazon.com/echo.api/echo-api-cert.pem",
                Rule::CertChainUrlHost,
            ),
            (
                "https://s3.amazonaws.com.evil.com/echo.api/c.pem",
                Rule::CertChainUrlHost,
            ),
            (
                "https://s3.amazonaws.com/EcHo.aPi/echo-api-cert.pem",
                Rule::CertChainUrlPath,
            ),
            (
                "https://s3.amazonaws.com/invalid.path/echo-api-cert.pem",
                Rule::CertChainUrlPath,
            ),
            (
                "https://s3.amazonaws.com/echo.api/../c.pem",
                Rule::CertChainUrlPath,
            ),
            (
                "https://s3.amazonaws.com/echo.api/%2E%2E/c.pem",
                Rule::CertChainUrlPath,
            ),
            ("https://s3.amazonaws.com/echo.api", Rule::CertChainUrlPath),
            (
                "https://s3.amazonaws.com:563/echo.api/echo-api-cert.pem",
                Rule::CertChainUrlPort,
            ),
            (
                "s3.amazonaws.com/echo.api/echo-api-cert.pem",
                Rule::SignatureCertChainUrlHeader,
            ),
            ("", Rule::SignatureCertChainUrlHeader),
        ];
        for (url, rule) in refused {
            let refusal = check_cert_chain_url(url).expect_err(url);
            assert_eq!(refusal.rule(), rule, "{url}");
        }
    }
}

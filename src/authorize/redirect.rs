//! The allow-list of Alexa redirect URLs.
//!
//! The bridge redirects the user's browser to Alexa's `redirect_uri`, so an unchecked value
//! would make it an open redirect that leaks authorization codes. Every check here is made on
//! the URL as the `url` crate parses it (the WHATWG rules browsers follow), never by string
//! prefix, and characters that parsers disagree about (backslash, whitespace, control
//! characters) are refused before parsing.

use std::fmt;

use url::{Host, Url};

/// Alexa's redirect hosts: `https://{host}/api/skill/link/{vendor id}`.
pub const ALEXA_REDIRECT_HOSTS: [&str; 3] = [
    "pitangui.amazon.com",
    "layla.amazon.com",
    "alexa.amazon.co.jp",
];

/// The path prefix of every Alexa redirect URL; the vendor id follows.
const LINK_PATH: &str = "/api/skill/link/";

/// The longest `redirect_uri` considered.
const MAX_LEN: usize = 512;

/// Why a `redirect_uri` was refused. The message never shows the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RedirectRefusal {
    /// No `redirect_uri` was given.
    Missing,
    /// Longer than 512 bytes.
    TooLong,
    /// It holds a backslash, whitespace or a control character.
    ForbiddenCharacter,
    /// It is not an absolute URL.
    Unparsable,
    /// The scheme is not `https`.
    NotHttps,
    /// It carries a user name or password (`https://user@host`).
    Userinfo,
    /// It names a port other than 443.
    Port,
    /// The host is not one of Alexa's (nor a configured extra URL).
    Host,
    /// The path is not `/api/skill/link/<vendor id>`.
    Path,
    /// It has a query string.
    Query,
    /// It has a fragment.
    Fragment,
}

impl RedirectRefusal {
    /// A short, fixed explanation suitable for an error page.
    pub fn reason(&self) -> &'static str {
        match self {
            RedirectRefusal::Missing => "redirect_uri is missing",
            RedirectRefusal::TooLong => "redirect_uri is too long",
            RedirectRefusal::ForbiddenCharacter => {
                "redirect_uri contains a backslash, whitespace or a control character"
            }
            RedirectRefusal::Unparsable => "redirect_uri is not an absolute URL",
            RedirectRefusal::NotHttps => "redirect_uri must use https",
            RedirectRefusal::Userinfo => "redirect_uri must not carry a user name or password",
            RedirectRefusal::Port => "redirect_uri must not name a port",
            RedirectRefusal::Host => "redirect_uri is not on an Alexa host",
            RedirectRefusal::Path => "redirect_uri is not an Alexa account-linking path",
            RedirectRefusal::Query => "redirect_uri must not have a query",
            RedirectRefusal::Fragment => "redirect_uri must not have a fragment",
        }
    }
}

impl fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for RedirectRefusal {}

/// The redirect URLs the bridge sends users back to: Alexa's, plus exact extra URLs.
///
/// ```
/// use account_link_bridge::authorize::{AlexaRedirects, RedirectRefusal};
///
/// let allowed = AlexaRedirects::new();
/// assert!(allowed.check("https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAA").is_ok());
/// assert_eq!(
///     allowed.check("https://pitangui.amazon.com.evil.com/api/skill/link/M2A"),
///     Err(RedirectRefusal::Host)
/// );
/// assert_eq!(
///     allowed.check("https://pitangui.amazon.com@evil.com/api/skill/link/M2A"),
///     Err(RedirectRefusal::Userinfo)
/// );
/// ```
#[derive(Clone, Debug, Default)]
pub struct AlexaRedirects {
    extra: Vec<Url>,
}

impl AlexaRedirects {
    /// Alexa's three hosts only.
    pub fn new() -> Self {
        AlexaRedirects::default()
    }

    /// Also allows exactly this URL (compared after parsing; no query or fragment allowed).
    /// Unlike Alexa's URLs it may use another scheme or a port, e.g. for a local test.
    pub fn allow(mut self, url: Url) -> Self {
        self.extra.push(url);
        self
    }

    /// The extra URLs allowed.
    pub fn extra(&self) -> &[Url] {
        &self.extra
    }

    /// Checks a `redirect_uri` and returns it parsed.
    pub fn check(&self, raw: &str) -> Result<Url, RedirectRefusal> {
        if raw.is_empty() {
            return Err(RedirectRefusal::Missing);
        }
        if raw.len() > MAX_LEN {
            return Err(RedirectRefusal::TooLong);
        }
        // The WHATWG parser silently drops tabs and newlines and reads `\` as `/`: refuse what
        // a browser or another parser might read differently.
        if raw
            .chars()
            .any(|c| c == '\\' || c.is_whitespace() || c.is_control())
        {
            return Err(RedirectRefusal::ForbiddenCharacter);
        }
        let url = Url::parse(raw).map_err(|_| RedirectRefusal::Unparsable)?;
        if !url.username().is_empty() || url.password().is_some() {
            return Err(RedirectRefusal::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(RedirectRefusal::Fragment);
        }
        if url.query().is_some() {
            return Err(RedirectRefusal::Query);
        }
        if self.extra.contains(&url) {
            return Ok(url);
        }
        if url.scheme() != "https" {
            return Err(RedirectRefusal::NotHttps);
        }
        // `port()` is `None` for the scheme's default, so an explicit `:443` passes.
        if url.port().is_some() {
            return Err(RedirectRefusal::Port);
        }
        match url.host() {
            Some(Host::Domain(host)) if ALEXA_REDIRECT_HOSTS.contains(&host) => {}
            _ => return Err(RedirectRefusal::Host),
        }
        let vendor_id = url
            .path()
            .strip_prefix(LINK_PATH)
            .ok_or(RedirectRefusal::Path)?;
        if vendor_id.is_empty() || !vendor_id.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(RedirectRefusal::Path);
        }
        Ok(url)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_alexa_hosts_are_allowed() {
        let allowed = AlexaRedirects::new();
        for host in ALEXA_REDIRECT_HOSTS {
            let url = format!("https://{host}/api/skill/link/M2AAAAAAAAAAAA");
            assert_eq!(allowed.check(&url).unwrap().as_str(), url);
        }
        // Hosts are case-insensitive and an explicit default port is the same URL.
        assert!(allowed
            .check("https://LAYLA.amazon.com:443/api/skill/link/X1")
            .is_ok());
    }

    #[test]
    fn open_redirect_attempts_are_refused_with_the_right_reason() {
        use RedirectRefusal::*;
        let cases = [
            ("", Missing),
            ("https://evil.com/api/skill/link/M2A", Host),
            (
                "https://pitangui.amazon.com.evil.com/api/skill/link/M2A",
                Host,
            ),
            ("https://evilpitangui.amazon.com/api/skill/link/M2A", Host),
            ("https://pitangui.amazon.com./api/skill/link/M2A", Host),
            (
                "https://pitangui.amazon.com@evil.com/api/skill/link/M2A",
                Userinfo,
            ),
            (
                "https://u:p@pitangui.amazon.com/api/skill/link/M2A",
                Userinfo,
            ),
            ("http://pitangui.amazon.com/api/skill/link/M2A", NotHttps),
            ("//evil.com/api/skill/link/M2A", Unparsable),
            ("javascript:alert(1)//pitangui.amazon.com", NotHttps),
            ("https://pitangui.amazon.com/\\evil.com", ForbiddenCharacter),
            ("https:/\\evil.com/api/skill/link/M2A", ForbiddenCharacter),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A%2f..%2fevil",
                Path,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A%5cevil",
                Path,
            ),
            ("https://pitangui.amazon.com/ /evil.com", ForbiddenCharacter),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A\t",
                ForbiddenCharacter,
            ),
            ("https://pitangui.amazon.com/api/skill/other/M2A", Path),
            ("https://pitangui.amazon.com/api/skill/link/", Path),
            ("https://pitangui.amazon.com/api/skill/link/M2A/extra", Path),
            (
                "https://pitangui.amazon.com/api/skill/link/../../evil",
                Path,
            ),
            ("https://pitangui.amazon.com:8443/api/skill/link/M2A", Port),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A?next=evil",
                Query,
            ),
            ("https://pitangui.amazon.com/api/skill/link/M2A#x", Fragment),
            ("https://[::1]/api/skill/link/M2A", Host),
            ("https://52.94.236.248/api/skill/link/M2A", Host),
        ];
        let allowed = AlexaRedirects::new();
        for (raw, reason) in cases {
            assert_eq!(allowed.check(raw), Err(reason), "{raw}");
        }
        assert_eq!(
            allowed.check(&format!("https://pitangui.amazon.com/{}", "a".repeat(600))),
            Err(TooLong)
        );
    }

    #[test]
    fn extra_urls_match_exactly_after_parsing() {
        let allowed =
            AlexaRedirects::new().allow(Url::parse("http://127.0.0.1:9000/linked").unwrap());
        assert!(allowed.check("http://127.0.0.1:9000/linked").is_ok());
        assert!(allowed.check("HTTP://127.0.0.1:9000/linked").is_ok());
        assert_eq!(
            allowed.check("http://127.0.0.1:9000/linked/more"),
            Err(RedirectRefusal::NotHttps)
        );
        assert_eq!(
            allowed.check("http://127.0.0.1:9001/linked"),
            Err(RedirectRefusal::NotHttps)
        );
    }
}

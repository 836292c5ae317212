//! The allow-list of Alexa redirect URLs.
//!
//! The bridge redirects the user's browser to Alexa's `redirect_uri`, so an unchecked value
//! would make it an open redirect that leaks authorization codes. Every check here is made on
//! the URL as the `url` crate parses it (the WHATWG rules browsers follow), never by string
//! prefix; characters that parsers disagree about (backslash, whitespace, control characters)
//! are refused before parsing, and so is a path the parser would rewrite (`..`, `%2e%2e`): the
//! URL must already be in the one form it is compared in.
//!
//! Alexa's redirect URL is `https://<Alexa host>/api/skill/link/<vendor id>`. Without a vendor
//! pin ([`AlexaRedirects::vendor_ids`]) any Alexa skill's URL passes, so any skill could send
//! its users through this bridge to the upstream's genuine login and receive their codes (or,
//! in implicit mode, their tokens): pin it in production.

use std::fmt;

use url::{Host, Url};

/// Alexa's redirect hosts: `https://{host}/api/skill/link/{vendor id}`. The Alexa developer
/// console lists `pitangui.amazon.com`, `layla.amazon.com` and `alexa.amazon.co.jp` (the three
/// regions) and `alexa.amazon.com` (used first by 2025–2026 configurations).
pub const ALEXA_REDIRECT_HOSTS: [&str; 4] = [
    "pitangui.amazon.com",
    "layla.amazon.com",
    "alexa.amazon.co.jp",
    "alexa.amazon.com",
];

/// The path prefix of every Alexa redirect URL; the vendor id follows.
const LINK_PATH: &str = "/api/skill/link/";

/// The path of the page Alexa's implicit grant returns to; `?vendorId=<id>` follows.
pub const IMPLICIT_STATUS_PATH: &str = "/spa/skill/account-linking-status.html";

/// The longest `redirect_uri` considered.
const MAX_LEN: usize = 512;

/// The longest vendor id considered (Alexa's are 14 characters).
const MAX_VENDOR_ID: usize = 64;

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
    /// The host is not one of Alexa's (nor a configured extra host or URL).
    Host,
    /// The path is not `/api/skill/link/<vendor id>` in normal form.
    Path,
    /// It has a query string (other than the implicit grant's `?vendorId=<id>`).
    Query,
    /// It has a fragment.
    Fragment,
    /// The vendor id is not one this bridge is pinned to.
    VendorId,
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
            RedirectRefusal::VendorId => {
                "redirect_uri belongs to an Alexa skill this bridge does not serve"
            }
        }
    }
}

impl fmt::Display for RedirectRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for RedirectRefusal {}

/// The redirect URLs the bridge sends users back to: Alexa's (optionally pinned to the skills'
/// vendor ids), on Alexa's hosts plus explicitly added ones, plus exact extra URLs.
///
/// ```
/// use account_link_bridge::authorize::{AlexaRedirects, RedirectRefusal};
///
/// let allowed = AlexaRedirects::new().vendor_ids(["M2AAAAAAAAAAAA"]);
/// assert!(allowed.check("https://alexa.amazon.com/api/skill/link/M2AAAAAAAAAAAA").is_ok());
/// assert_eq!(
///     allowed.check("https://pitangui.amazon.com/api/skill/link/M2OTHERSKILL00"),
///     Err(RedirectRefusal::VendorId)
/// );
/// assert_eq!(
///     allowed.check("https://pitangui.amazon.com.evil.com/api/skill/link/M2AAAAAAAAAAAA"),
///     Err(RedirectRefusal::Host)
/// );
/// assert_eq!(
///     allowed.check("https://pitangui.amazon.com@evil.com/api/skill/link/M2AAAAAAAAAAAA"),
///     Err(RedirectRefusal::Userinfo)
/// );
/// ```
#[derive(Clone, Debug, Default)]
pub struct AlexaRedirects {
    extra: Vec<Url>,
    extra_hosts: Vec<String>,
    vendor_ids: Option<Vec<String>>,
    implicit_status_page: bool,
}

impl AlexaRedirects {
    /// Alexa's four hosts, any vendor id, the link path only.
    pub fn new() -> Self {
        AlexaRedirects::default()
    }

    /// Also allows exactly this URL (compared after parsing; no query or fragment allowed).
    /// Unlike Alexa's URLs it may use another scheme or a port, e.g. for a local test.
    pub fn allow(mut self, url: Url) -> Self {
        self.extra.push(url);
        self
    }

    /// Also treats `host` as an Alexa host (e.g. `skills-store.amazon.com`, seen in a few
    /// exchanges): the same https, port, path and vendor-id rules apply. The host is compared
    /// exactly, ignoring ASCII case; there are no wildcards, and a host that is not a plain DNS
    /// name (`*`, an IP address, a port) never matches.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.extra_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Pins the skills served: only redirect URLs whose vendor id is exactly one of these
    /// (case-sensitive, compared after parsing) pass; any other is
    /// [`RedirectRefusal::VendorId`]. Without a pin any Alexa skill's URL passes.
    pub fn vendor_ids<I, S>(mut self, ids: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.vendor_ids = Some(ids.into_iter().map(Into::into).collect());
        self
    }

    /// Also accepts the page Alexa's implicit grant returns to:
    /// `https://<Alexa host>/spa/skill/account-linking-status.html?vendorId=<vendor id>`, with
    /// exactly that one query parameter (the vendor id pinned like the link path's). Turned on
    /// by [`AuthorizeRedirectBuilder::implicit`](super::AuthorizeRedirectBuilder::implicit).
    pub fn implicit_status_page(mut self, on: bool) -> Self {
        self.implicit_status_page = on;
        self
    }

    /// The extra URLs allowed.
    pub fn extra(&self) -> &[Url] {
        &self.extra
    }

    /// The hosts allowed besides [`ALEXA_REDIRECT_HOSTS`].
    pub fn extra_hosts(&self) -> &[String] {
        &self.extra_hosts
    }

    /// The pinned vendor ids; `None` when any vendor id passes.
    pub fn pinned_vendor_ids(&self) -> Option<&[String]> {
        self.vendor_ids.as_deref()
    }

    /// The accepted redirect URLs as patterns an operator can read, e.g.
    /// `https://{pitangui.amazon.com|layla.amazon.com|alexa.amazon.co.jp|alexa.amazon.com}/api/skill/link/{M2AAAAAAAAAAAA}`.
    pub fn accepted(&self) -> Vec<String> {
        let hosts: Vec<&str> = ALEXA_REDIRECT_HOSTS
            .iter()
            .copied()
            .chain(self.extra_hosts.iter().map(String::as_str))
            .collect();
        let hosts = format!("{{{}}}", hosts.join("|"));
        let ids = match &self.vendor_ids {
            Some(ids) => format!("{{{}}}", ids.join("|")),
            None => "<any vendor id>".to_owned(),
        };
        let mut accepted = vec![format!("https://{hosts}{LINK_PATH}{ids}")];
        if self.implicit_status_page {
            accepted.push(format!(
                "https://{hosts}{IMPLICIT_STATUS_PATH}?vendorId={ids}"
            ));
        }
        accepted.extend(self.extra.iter().map(Url::to_string));
        accepted
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
        // An empty user-info (`https://:@host`) parses to none at all: look at what was written.
        if !url.username().is_empty() || url.password().is_some() || raw_authority_has_at(raw) {
            return Err(RedirectRefusal::Userinfo);
        }
        if url.fragment().is_some() {
            return Err(RedirectRefusal::Fragment);
        }
        if url.query().is_none() && self.extra.contains(&url) {
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
            Some(Host::Domain(host))
                if ALEXA_REDIRECT_HOSTS.contains(&host)
                    || self.extra_hosts.iter().any(|h| h == host) => {}
            _ => return Err(RedirectRefusal::Host),
        }
        // The authority too: `%2e` in a host or `:0443` would be rewritten by the parser.
        let authority = raw_authority(raw).to_ascii_lowercase();
        let host = url.host_str().unwrap_or_default();
        if authority != host && authority.strip_suffix(":443") != Some(host) {
            return Err(RedirectRefusal::Host);
        }
        // The path must be the one the parser keeps: `/link/../link/X`, `%2e%2e` or `/./`
        // would be rewritten, and another server might not rewrite them the same way.
        if raw_path(raw) != Some(url.path()) {
            return Err(RedirectRefusal::Path);
        }
        let vendor_id = match (url.path().strip_prefix(LINK_PATH), url.query()) {
            (Some(vendor_id), None) => vendor_id,
            (Some(_), Some(_)) => return Err(RedirectRefusal::Query),
            (None, query) if self.implicit_status_page && url.path() == IMPLICIT_STATUS_PATH => {
                implicit_vendor_id(query)?
            }
            (None, Some(_)) if url.path() == IMPLICIT_STATUS_PATH => {
                return Err(RedirectRefusal::Query)
            }
            (None, _) => return Err(RedirectRefusal::Path),
        };
        if !is_vendor_id(vendor_id) {
            return Err(RedirectRefusal::Path);
        }
        if let Some(ids) = &self.vendor_ids {
            if !ids.iter().any(|id| id == vendor_id) {
                return Err(RedirectRefusal::VendorId);
            }
        }
        Ok(url)
    }
}

/// The vendor id of the implicit grant's `?vendorId=<id>`: the query must be exactly that one
/// parameter, written plainly (no encoding, no second parameter, no empty one).
fn implicit_vendor_id(query: Option<&str>) -> Result<&str, RedirectRefusal> {
    let vendor_id = query
        .and_then(|q| q.strip_prefix("vendorId="))
        .ok_or(RedirectRefusal::Query)?;
    if !is_vendor_id(vendor_id) {
        return Err(RedirectRefusal::Query);
    }
    Ok(vendor_id)
}

fn is_vendor_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_VENDOR_ID && id.bytes().all(|b| b.is_ascii_alphanumeric())
}

/// Whether the authority as written in `raw` holds an `@`.
fn raw_authority_has_at(raw: &str) -> bool {
    raw_authority(raw).contains('@')
}

/// The authority as written in `raw`: after `://` up to `/`, `?`, `#` or the end.
fn raw_authority(raw: &str) -> &str {
    let rest = raw.split_once("://").map_or("", |(_, rest)| rest);
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    &rest[..end]
}

/// The path as written in `raw` (an absolute URL with an authority and no backslash): from the
/// first `/` after `//` up to `?`, `#` or the end.
fn raw_path(raw: &str) -> Option<&str> {
    let (_, rest) = raw.split_once("://")?;
    let start = rest.find('/')?;
    let path = &rest[start..];
    let end = path.find(['?', '#']).unwrap_or(path.len());
    Some(&path[..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_four_alexa_hosts_are_allowed() {
        assert!(ALEXA_REDIRECT_HOSTS.contains(&"alexa.amazon.com"));
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
    fn the_vendor_pin_is_exact_and_case_sensitive() {
        let pinned = AlexaRedirects::new().vendor_ids(["M2AAAAAAAAAAAA", "M3BBBBBBBBBBBB"]);
        for host in ALEXA_REDIRECT_HOSTS {
            for id in ["M2AAAAAAAAAAAA", "M3BBBBBBBBBBBB"] {
                let url = format!("https://{host}/api/skill/link/{id}");
                assert!(pinned.check(&url).is_ok(), "{url}");
            }
        }
        for refused in [
            "https://pitangui.amazon.com/api/skill/link/M2OTHERSKILL00",
            "https://pitangui.amazon.com/api/skill/link/m2aaaaaaaaaaaa",
            "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAA",
            "https://pitangui.amazon.com/api/skill/link/M2AAAAAAAAAAAAA",
        ] {
            assert_eq!(
                pinned.check(refused),
                Err(RedirectRefusal::VendorId),
                "{refused}"
            );
        }
        // Unpinned, any skill's passes.
        assert!(AlexaRedirects::new()
            .check("https://pitangui.amazon.com/api/skill/link/M2OTHERSKILL00")
            .is_ok());
        assert_eq!(pinned.pinned_vendor_ids().unwrap().len(), 2);
        assert!(pinned.accepted()[0].ends_with("/api/skill/link/{M2AAAAAAAAAAAA|M3BBBBBBBBBBBB}"));
        assert!(pinned.accepted()[0].contains("alexa.amazon.com}"));
    }

    #[test]
    fn an_extra_host_is_allowed_only_when_configured_and_exactly() {
        let url = "https://skills-store.amazon.com/api/skill/link/M2AAAAAAAAAAAA";
        assert_eq!(AlexaRedirects::new().check(url), Err(RedirectRefusal::Host));
        let allowed = AlexaRedirects::new()
            .allow_host("Skills-Store.amazon.com")
            .vendor_ids(["M2AAAAAAAAAAAA"]);
        assert!(allowed.check(url).is_ok());
        for refused in [
            "https://evil.skills-store.amazon.com/api/skill/link/M2AAAAAAAAAAAA",
            "https://skills-store.amazon.com.evil.com/api/skill/link/M2AAAAAAAAAAAA",
        ] {
            assert_eq!(
                allowed.check(refused),
                Err(RedirectRefusal::Host),
                "{refused}"
            );
        }
        assert_eq!(
            allowed.check("https://skills-store.amazon.com/api/skill/link/M2OTHER"),
            Err(RedirectRefusal::VendorId)
        );
        let wildcard = AlexaRedirects::new().allow_host("*.amazon.com");
        assert_eq!(
            wildcard.check("https://evil.amazon.com/api/skill/link/M2A"),
            Err(RedirectRefusal::Host)
        );
        assert!(allowed.accepted()[0].contains("|skills-store.amazon.com}"));
    }

    #[test]
    fn the_implicit_status_page_is_accepted_only_in_its_exact_shape() {
        let page = |host: &str, query: &str| {
            format!("https://{host}/spa/skill/account-linking-status.html{query}")
        };
        let implicit = AlexaRedirects::new().implicit_status_page(true);
        for host in ALEXA_REDIRECT_HOSTS {
            let url = page(host, "?vendorId=M2AAAAAAAAAAAA");
            assert_eq!(implicit.check(&url).unwrap().as_str(), url);
        }
        // The link path stays accepted in implicit mode.
        assert!(implicit
            .check("https://layla.amazon.com/api/skill/link/M2AAAAAAAAAAAA")
            .is_ok());
        // Not in code mode.
        assert_eq!(
            AlexaRedirects::new().check(&page("pitangui.amazon.com", "?vendorId=M2A")),
            Err(RedirectRefusal::Query)
        );
        use RedirectRefusal::*;
        let host = "pitangui.amazon.com";
        for (query, refusal) in [
            ("", Query),
            ("?", Query),
            ("?vendorId=", Query),
            ("?vendorId=M2A&vendorId=M2B", Query),
            ("?vendorId=M2A&next=https://evil.com", Query),
            ("?next=x&vendorId=M2A", Query),
            ("?vendorid=M2A", Query),
            ("?vendor%49d=M2A", Query),
            ("?vendorId=M2%41", Query),
            ("?vendorId=M2A;x", Query),
            ("?vendorId=M2A#x", Fragment),
        ] {
            assert_eq!(
                implicit.check(&page(host, query)),
                Err(refusal),
                "{query:?}"
            );
        }
        assert_eq!(
            implicit.check("https://pitangui.amazon.com/spa/skill/other.html?vendorId=M2A"),
            Err(Path)
        );
        assert_eq!(
            implicit.check("https://pitangui.amazon.com/api/skill/link/M2A?vendorId=M2A"),
            Err(Query)
        );
        assert_eq!(
            implicit.check(&page("evil.com", "?vendorId=M2A")),
            Err(Host)
        );
        let pinned = implicit.clone().vendor_ids(["M2AAAAAAAAAAAA"]);
        assert!(pinned
            .check(&page(host, "?vendorId=M2AAAAAAAAAAAA"))
            .is_ok());
        assert_eq!(
            pinned.check(&page(host, "?vendorId=M2OTHERSKILL00")),
            Err(VendorId)
        );
        assert_eq!(pinned.accepted().len(), 2);
    }

    #[test]
    fn recent_redirect_validation_bypasses_are_refused() {
        use RedirectRefusal::*;
        // Shapes of redirect-check bypasses published against other servers (Keycloak
        // 2024-2026, oauth2-proxy): each must be refused, whatever the reason.
        let cases = [
            (
                "https://pitangui.amazon.com/api/skill/link/..;/..;/evil",
                Path,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A/..;/M2B",
                Path,
            ),
            ("https://pitangui.amazon.com/..;/api/skill/link/M2A", Path),
            (
                "https://a@b@pitangui.amazon.com/api/skill/link/M2A",
                Userinfo,
            ),
            (
                "https://pitangui.amazon.com@evil.com@pitangui.amazon.com/api/skill/link/M2A",
                Userinfo,
            ),
            (
                "https://evil.com@pitangui.amazon.com@x/api/skill/link/M2A",
                Userinfo,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/../link/M2A",
                Path,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/%2e%2e/link/M2A",
                Path,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/%2E%2E/link/M2A",
                Path,
            ),
            ("https://pitangui.amazon.com/api/skill/x/../link/M2A", Path),
            ("https://pitangui.amazon.com/api/skill/./link/M2A", Path),
            ("https://pitangui.amazon.com/api/skill/%2e/link/M2A", Path),
            (
                "https://pitangui.amazon.com/evil/../api/skill/link/M2A",
                Path,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A;jsessionid=x",
                Path,
            ),
            ("https://pitangui.amazon.com/api/skill/link;x/M2A", Path),
            ("https://pitangui.amazon.com/api/skill/link/M2A/", Path),
            ("https://pitangui.amazon.com//api/skill/link/M2A", Path),
            ("https://pitangui.amazon.com/api//skill/link/M2A", Path),
            ("https://pitangui.amazon.com/api/skill/link//M2A", Path),
            (
                "https://pitangui.amazon.com\\@evil.com/api/skill/link/M2A",
                ForbiddenCharacter,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A\\..\\evil",
                ForbiddenCharacter,
            ),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A%2F..%2F..%2Fevil",
                Path,
            ),
            ("https://pitangui.amazon.com/api%2fskill%2flink/M2A", Path),
            (
                "https://pitangui.amazon.com/api/skill/link/M2A%5C..%5Cevil",
                Path,
            ),
            (
                "https://user@pitangui.amazon.com/api/skill/link/M2A",
                Userinfo,
            ),
            ("https://:@pitangui.amazon.com/api/skill/link/M2A", Userinfo),
            ("https://@pitangui.amazon.com/api/skill/link/M2A", Userinfo),
            ("https://pitangui.amazon.com:80/api/skill/link/M2A", Port),
            ("https://pitangui.amazon.com:0443/api/skill/link/M2A", Host),
            ("https://pitangui.amazon.com:444/api/skill/link/M2A", Port),
            ("http://pitangui.amazon.com/api/skill/link/M2A", NotHttps),
            (
                "http://pitangui.amazon.com:443/api/skill/link/M2A",
                NotHttps,
            ),
            ("https:pitangui.amazon.com/api/skill/link/M2A", Host),
            ("https:///pitangui.amazon.com/api/skill/link/M2A", Host),
            ("https://pitangui.amazon.com/api/skill/link/M2A?", Query),
            ("https://pitangui.amazon.com/api/skill/link/M2A#", Fragment),
            ("https://pitangui%2eamazon.com/api/skill/link/M2A", Host),
            (
                "https://xn--pitangui-.amazon.com/api/skill/link/M2A",
                Unparsable,
            ),
        ];
        let allowed = AlexaRedirects::new();
        for (raw, reason) in cases {
            let result = allowed.check(raw);
            assert!(result.is_err(), "{raw} was accepted");
            assert_eq!(result, Err(reason), "{raw}");
        }
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

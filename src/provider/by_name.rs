//! Presets by name: [`FromStr`](std::str::FromStr) for [`Provider`].

use std::fmt;

use super::Provider;

impl Provider {
    /// The preset with this name (`salesforce`, `github`, `slack`, `generic`, in any case),
    /// for command lines.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "salesforce" => Some(Provider::salesforce()),
            "github" => Some(Provider::github()),
            "slack" => Some(Provider::slack()),
            "generic" => Some(Provider::generic()),
            _ => None,
        }
    }

    /// The preset names [`Provider::by_name`] and [`str::parse`] know.
    pub const PRESETS: &'static [&'static str] = &["salesforce", "github", "slack", "generic"];
}

/// A preset name [`Provider::from_str`](std::str::FromStr::from_str) does not know.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownProvider {
    name: String,
}

impl fmt::Display for UnknownProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown provider {:?}; known presets: {}",
            self.name,
            Provider::PRESETS.join(", ")
        )
    }
}

impl std::error::Error for UnknownProvider {}

/// A preset by name, as [`Provider::by_name`]:
///
/// ```
/// use account_link_bridge::Provider;
///
/// let provider: Provider = "Salesforce".parse().unwrap();
/// assert_eq!(provider.name(), "salesforce");
/// let error = "okta".parse::<Provider>().unwrap_err();
/// assert!(error.to_string().contains("salesforce, github, slack, generic"));
/// ```
impl std::str::FromStr for Provider {
    type Err = UnknownProvider;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Provider::by_name(name).ok_or_else(|| UnknownProvider {
            // Bounded: the name is echoed in an error an operator reads.
            name: name.chars().take(40).collect(),
        })
    }
}

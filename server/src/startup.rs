//! The startup log: which routes are on, and why, said once at INFO so that an operator sees
//! from the first lines whether Alexa's authorization URI is the bridge's (the middleman) or
//! the upstream's own (direct mode), before a link fails.

use std::net::SocketAddr;

use crate::config::{Args, Endpoints, Grant};

/// Where the configuration came from, for naming the setting in the log: a flag of `bridge`,
/// or a `BRIDGE_*` variable of `bridge-lambda`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// The `bridge` command line (flags, each also `BRIDGE_<NAME>`).
    CommandLine,
    /// `bridge-lambda`: environment variables only.
    Lambda,
}

impl Surface {
    fn name(self, flag: &'static str, variable: &'static str) -> &'static str {
        match self {
            Surface::CommandLine => flag,
            Surface::Lambda => variable,
        }
    }
}

/// What the startup log says about the routes.
#[derive(Debug)]
pub struct RouteLines<'a> {
    /// The configuration.
    pub args: &'a Args,
    /// The upstream endpoints in use.
    pub endpoints: &'a Endpoints,
    /// Whether the embedded demo upstream serves them.
    pub demo: bool,
    /// The bridge's external base URL (empty when there is none).
    pub public_url: &'a str,
    /// The admin listener of the metrics, when on.
    pub metrics: Option<SocketAddr>,
    /// Where the configuration came from.
    pub surface: Surface,
}

impl RouteLines<'_> {
    /// One line per route (or pair of routes), each saying whether it is on and why.
    pub fn lines(&self) -> Vec<String> {
        let name = |flag, variable| self.surface.name(flag, variable);
        let authorize_flag = name("--upstream-authorize-url", "BRIDGE_UPSTREAM_AUTHORIZE_URL");
        let public = self.public_url;
        let mut lines = vec![format!(
            "route POST /token on (always): Alexa's access token URI, {public}/token, exchanging with {}",
            self.endpoints.token_url
        )];
        match &self.endpoints.authorize_url {
            Some(upstream) => {
                let why = if self.demo && self.args.upstream_authorize_url.is_none() {
                    "the embedded demo upstream has one".to_string()
                } else {
                    format!("{authorize_flag} is given")
                };
                lines.push(format!(
                    "routes GET /authorize and GET /callback on (authorization middleman), since {why}: Alexa's authorization URI is {public}/authorize, and {public}/callback is the redirect URL to register at the upstream ({upstream})"
                ));
                lines.push(match self.args.grant {
                    Grant::Code => format!(
                        "grant: authorization code ({}): /callback hands Alexa a sealed code, which POST /token redeems",
                        name("--grant code", "BRIDGE_GRANT=code")
                    ),
                    Grant::Implicit => format!(
                        "grant: implicit ({}): /callback exchanges the upstream's code itself and hands Alexa the token in the URL fragment",
                        name("--grant implicit", "BRIDGE_GRANT=implicit")
                    ),
                });
            }
            None => lines.push(format!(
                "routes GET /authorize and GET /callback off: no {authorize_flag}: Alexa must use the upstream's own authorization URI, direct mode; register Alexa's redirect URLs there"
            )),
        }
        lines.push("route GET /healthz on (always): liveness, answers 200 ok".into());
        match (self.surface, self.metrics) {
            (Surface::Lambda, _) => {}
            (Surface::CommandLine, Some(admin)) => lines.push(format!(
                "metrics on the admin listener http://{admin}/metrics (--metrics-listen), never on Alexa's port"
            )),
            (Surface::CommandLine, None) => {
                lines.push("metrics off: no --metrics-listen".into())
            }
        }
        lines
    }
}

//! The one grant a fake upstream holds: which codes it redeems, which refresh tokens it honours,
//! whether it rotated and revoked. Provider-neutral: `shape` words the outcome.

use std::collections::{HashMap, HashSet};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::{Refusal, EXPIRED_CODE};

/// How strictly the grant judges what it is shown (set by the builder).
#[derive(Clone, Debug, Default)]
pub(super) struct Rules {
    /// Codes redeem once (a reused code revokes the grant), only refresh tokens the fake issued
    /// are honoured, and issued tokens are numbered so each answer differs.
    pub(super) strict: bool,
    /// Each refresh answers a new refresh token; under `strict`, a rotated-out one coming back
    /// revokes the grant (Salesforce's and oidc-provider's behaviour with rotation on).
    pub(super) rotate: bool,
    /// Only codes the fake's authorize endpoint issued redeem, with their redirect_uri and PKCE.
    pub(super) issued_codes_only: bool,
    /// Issued codes do not remember PKCE: an upstream that ignores it.
    pub(super) ignores_pkce: bool,
    /// Issued codes are this many characters longer than usual.
    pub(super) code_padding: usize,
    /// Codes refused with a given refusal, whatever else holds.
    pub(super) refused_codes: Vec<(String, Refusal)>,
}

/// What the authorize endpoint remembers of one code it issued.
#[derive(Clone, Debug)]
struct IssuedCode {
    redirect_uri: String,
    code_challenge: Option<String>,
    code_challenge_method: Option<String>,
}

/// One issue of tokens: the access token, and the refresh token when one was issued.
#[derive(Clone, Debug)]
pub(super) struct Issue {
    pub(super) access_token: String,
    pub(super) refresh_token: Option<String>,
}

/// The grant's state.
#[derive(Debug)]
pub(super) struct Grant {
    rules: Rules,
    access_base: String,
    refresh_base: String,
    issued: usize,
    live: String,
    rotated: HashSet<String>,
    codes_used: HashSet<String>,
    authorized: HashMap<String, IssuedCode>,
    authorized_count: usize,
    revoked: bool,
}

impl Grant {
    pub(super) fn new(rules: Rules, access_base: String, refresh_base: String) -> Self {
        let mut grant = Grant {
            rules,
            access_base,
            refresh_base,
            issued: 0,
            live: String::new(),
            rotated: HashSet::new(),
            codes_used: HashSet::new(),
            authorized: HashMap::new(),
            authorized_count: 0,
            revoked: false,
        };
        grant.live = grant.refresh_token(0);
        grant
    }

    fn numbered(&self) -> bool {
        self.rules.strict || self.rules.rotate
    }

    /// The `n`-th access token issued (1 = the first).
    pub(super) fn access_token(&self, n: usize) -> String {
        if self.numbered() {
            format!("{}.{n}", self.access_base)
        } else {
            self.access_base.clone()
        }
    }

    /// The refresh token issued with the `n`-th issue (0 = the one live before any issue).
    pub(super) fn refresh_token(&self, n: usize) -> String {
        if self.numbered() {
            format!("{}.{n}", self.refresh_base)
        } else {
            self.refresh_base.clone()
        }
    }

    pub(super) fn live(&self) -> &str {
        &self.live
    }

    pub(super) fn revoked(&self) -> bool {
        self.revoked
    }

    /// The authorize endpoint issues a code for this redirect_uri and PKCE challenge.
    pub(super) fn authorize(
        &mut self,
        redirect_uri: String,
        code_challenge: Option<String>,
        code_challenge_method: Option<String>,
    ) -> String {
        let code = format!(
            "aPrxUpstreamCode{}{}",
            self.authorized_count,
            "x".repeat(self.rules.code_padding)
        );
        self.authorized_count += 1;
        let remembers_pkce = !self.rules.ignores_pkce;
        self.authorized.insert(
            code.clone(),
            IssuedCode {
                redirect_uri,
                code_challenge: code_challenge.filter(|_| remembers_pkce),
                code_challenge_method: code_challenge_method.filter(|_| remembers_pkce),
            },
        );
        code
    }

    /// Redeems `code` (authorization_code grant).
    pub(super) fn redeem(
        &mut self,
        code: &str,
        redirect_uri: Option<&str>,
        code_verifier: Option<&str>,
        with_refresh_token: bool,
    ) -> Result<Issue, Refusal> {
        if let Some((_, refusal)) = self.rules.refused_codes.iter().find(|(c, _)| c == code) {
            return Err(*refusal);
        }
        if code == EXPIRED_CODE {
            return Err(Refusal::ExpiredCode);
        }
        if self.rules.issued_codes_only {
            let Some(issued) = self.authorized.remove(code) else {
                return Err(if self.codes_used.contains(code) {
                    Refusal::CodeUsed
                } else {
                    Refusal::InvalidCode
                });
            };
            self.codes_used.insert(code.to_owned());
            if redirect_uri != Some(issued.redirect_uri.as_str()) {
                return Err(Refusal::RedirectMismatch);
            }
            if let Some(challenge) = &issued.code_challenge {
                let matches = code_verifier.is_some_and(|verifier| {
                    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == *challenge
                });
                if issued.code_challenge_method.as_deref() != Some("S256") || !matches {
                    return Err(Refusal::CodeVerifier);
                }
            }
        } else if self.rules.strict && !self.codes_used.insert(code.to_owned()) {
            self.revoked = true;
            return Err(Refusal::CodeUsed);
        }
        Ok(self.issue(with_refresh_token))
    }

    /// Answers a refresh with `token` (refresh_token grant).
    pub(super) fn refresh(&mut self, token: &str) -> Result<Issue, Refusal> {
        let rotate = self.rules.rotate;
        if !self.rules.strict {
            return Ok(self.issue(rotate));
        }
        if self.revoked {
            Err(Refusal::InvalidRefreshToken)
        } else if token == self.live {
            if rotate {
                self.rotated.insert(token.to_owned());
            }
            Ok(self.issue(rotate))
        } else if self.rotated.contains(token) {
            self.revoked = true;
            Err(Refusal::InvalidRefreshToken)
        } else {
            Err(Refusal::InvalidRefreshToken)
        }
    }

    fn issue(&mut self, new_refresh_token: bool) -> Issue {
        self.issued += 1;
        let n = self.issued;
        let refresh_token = new_refresh_token.then(|| {
            self.live = self.refresh_token(n);
            self.live.clone()
        });
        Issue {
            access_token: self.access_token(n),
            refresh_token,
        }
    }
}

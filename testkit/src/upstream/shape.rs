//! Each provider's wire shape: its paths, where it reads client credentials, and how it words a
//! token answer and each refusal (the grant decides, the shape speaks).

use serde_json::{json, Value};

use http::Response;

use super::grant::Issue;
use super::{full, page, Answer, FakeBody, Refusal, Seen};

/// The provider a fake upstream behaves like.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Shape {
    Salesforce,
    GitHub,
    Slack,
    Generic,
}

/// The settings a shape's answers read.
#[derive(Clone, Debug, Default)]
pub(super) struct Look {
    pub(super) expires_in: Option<u64>,
    pub(super) access_token: Option<String>,
    pub(super) refresh_token: Option<String>,
    pub(super) instance_url: Option<String>,
    pub(super) api_instance_url: Option<String>,
    pub(super) bot_token: bool,
}

const UTF8_JSON: &str = "application/json; charset=utf-8";

/// The access token a Slack bot install answers at the top level.
pub const SLACK_BOT_TOKEN: &str = "xoxb-17653672481-19874698323-pdFZKVeTuE8sk7oOcBrzbqgy";

impl Shape {
    pub(super) fn token_path(self) -> &'static str {
        match self {
            Shape::Salesforce => "/services/oauth2/token",
            Shape::GitHub => "/login/oauth/access_token",
            Shape::Slack => "/api/oauth.v2.access",
            Shape::Generic => "/token",
        }
    }

    pub(super) fn authorize_path(self) -> &'static str {
        match self {
            Shape::Salesforce => "/services/oauth2/authorize",
            Shape::GitHub => "/login/oauth/authorize",
            Shape::Slack => "/oauth/v2/authorize",
            Shape::Generic => "/authorize",
        }
    }

    /// The authorize endpoint's answer to a request without a usable redirect_uri: Salesforce
    /// sends the browser to its error page, the others show one.
    pub(super) fn authorize_refusal(self) -> Response<FakeBody> {
        match self {
            Shape::Salesforce => Response::builder()
                .status(302)
                .header(
                    "location",
                    "/setup/secur/RemoteAccessErrorPage.apexp?display=page&error=redirect_uri_missing",
                )
                .body(full(String::new()))
                .unwrap(),
            Shape::GitHub | Shape::Slack | Shape::Generic => {
                page(400, "redirect_uri is missing or not a URL")
            }
        }
    }

    /// The access and refresh tokens this shape issues, before numbering.
    pub(super) fn token_bases(self, look: &Look) -> (String, String) {
        let (access, refresh) = match (self, look.expires_in.is_some()) {
            (Shape::Salesforce, _) => (
                "00Dx0000000BV7z!AR8AQAxo9UfVkh8AlV0Gomt9Czx9",
                "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrbU1Q",
            ),
            (Shape::GitHub, false) => ("gho_16C7e42F292c6912E7710c838347Ae178B4a", ""),
            (Shape::GitHub, true) => (
                "ghu_16C7e42F292c6912E7710c838347Ae178B4a",
                "ghr_1B4a2e77838347a7E420ce178F2E7c6912E169246c34E1",
            ),
            (Shape::Slack, false) => ("xoxp-1234", ""),
            (Shape::Slack, true) => ("xoxe.xoxp-1-Mi0y", "xoxe-1-My0xLTE"),
            (Shape::Generic, _) => ("access-token-of-the-fake", "refresh-token-of-the-fake"),
        };
        (
            look.access_token.clone().unwrap_or_else(|| access.into()),
            look.refresh_token.clone().unwrap_or_else(|| refresh.into()),
        )
    }

    /// Whether a code exchange brings a refresh token: GitHub and Slack issue one only with
    /// expiring tokens (GitHub Apps, Slack token rotation).
    pub(super) fn refresh_token_on_code(self, look: &Look) -> bool {
        match self {
            Shape::Salesforce | Shape::Generic => true,
            Shape::GitHub | Shape::Slack => look.expires_in.is_some(),
        }
    }

    /// The expires_in a shape answers by default.
    pub(super) fn default_expires_in(self) -> Option<u64> {
        match self {
            Shape::Generic => Some(3600),
            Shape::Salesforce | Shape::GitHub | Shape::Slack => None,
        }
    }

    /// The client credentials as this provider reads them: Slack from HTTP Basic only,
    /// Salesforce and GitHub from the body only, a generic server from either.
    pub(super) fn credentials(self, seen: &Seen) -> Option<(String, String)> {
        let body = || Some((seen.param("client_id")?, seen.param("client_secret")?));
        match self {
            Shape::Slack => seen.basic(),
            Shape::Salesforce | Shape::GitHub => body(),
            Shape::Generic => seen.basic().or_else(body),
        }
    }

    /// The answer to a successful exchange (`refresh`: a refresh_token grant).
    pub(super) fn token(self, look: &Look, issue: &Issue, refresh: bool, seen: &Seen) -> Answer {
        let mut fields: Vec<(&str, Value)> = Vec::new();
        match self {
            Shape::Salesforce => {
                fields.push(("access_token", issue.access_token.clone().into()));
                let instance = look.instance_url.as_deref();
                fields.push((
                    "instance_url",
                    instance.unwrap_or("https://na1.salesforce.com").into(),
                ));
                if let Some(api) = &look.api_instance_url {
                    fields.push(("api_instance_url", api.clone().into()));
                }
                fields.push((
                    "id",
                    "https://login.salesforce.com/id/00Dx0000000BV7z/005x00000012Q9P".into(),
                ));
                fields.push(("token_type", "Bearer".into()));
                fields.push(("issued_at", "1278448101416".into()));
                fields.push((
                    "signature",
                    "CMJ4l+CCaPQiKjoOEwEig9H4wqhpuLSk4J2urAe+fVg=".into(),
                ));
                push_lifetime(&mut fields, look, issue);
                Answer::json(200, object(&fields))
            }
            Shape::Generic => {
                fields.push(("access_token", issue.access_token.clone().into()));
                fields.push(("token_type", "Bearer".into()));
                push_lifetime(&mut fields, look, issue);
                Answer {
                    status: 200,
                    content_type: "application/json",
                    body: object(&fields),
                }
            }
            Shape::GitHub => {
                fields.push(("access_token", issue.access_token.clone().into()));
                push_lifetime(&mut fields, look, issue);
                if issue.refresh_token.is_some() {
                    fields.push(("refresh_token_expires_in", 15_811_200.into()));
                }
                let scope = if look.expires_in.is_some() {
                    ""
                } else {
                    "repo,gist"
                };
                fields.push(("scope", scope.into()));
                fields.push(("token_type", "bearer".into()));
                github(seen, &fields)
            }
            Shape::Slack => {
                fields.push(("ok", true.into()));
                fields.push(("app_id", "A0KRD7HC3".into()));
                if refresh {
                    // A rotation refresh answers the user token at the top level.
                    fields.push(("token_type", "user".into()));
                    fields.push(("access_token", issue.access_token.clone().into()));
                    push_lifetime(&mut fields, look, issue);
                } else {
                    if look.bot_token {
                        fields.push(("access_token", SLACK_BOT_TOKEN.into()));
                        fields.push(("token_type", "bot".into()));
                        fields.push(("scope", "commands,incoming-webhook".into()));
                        fields.push(("bot_user_id", "U0KRQLJ9H".into()));
                    }
                    let mut user: Vec<(&str, Value)> = vec![
                        ("id", "U1234".into()),
                        ("scope", "chat:write".into()),
                        ("access_token", issue.access_token.clone().into()),
                        ("token_type", "user".into()),
                    ];
                    push_lifetime(&mut user, look, issue);
                    let user: Value = serde_json::from_str(&object(&user)).unwrap();
                    fields.push(("authed_user", user));
                    fields.push((
                        "team",
                        json!({"id": "T9TK3CUKW", "name": "Slack Softball Team"}),
                    ));
                    fields.push(("enterprise", Value::Null));
                    fields.push(("is_enterprise_install", false.into()));
                }
                Answer {
                    status: 200,
                    content_type: UTF8_JSON,
                    body: object(&fields),
                }
            }
        }
    }

    /// A refusal in this provider's words.
    pub(super) fn refusal(self, refusal: Refusal, seen: &Seen) -> Answer {
        match self {
            Shape::Salesforce => salesforce_refusal(refusal),
            Shape::Generic => generic_refusal(refusal),
            Shape::GitHub => {
                let (error, description) = match refusal {
                    Refusal::ExpiredCode
                    | Refusal::InvalidCode
                    | Refusal::CodeUsed
                    | Refusal::CodeVerifier => (
                        "bad_verification_code",
                        "The code passed is incorrect or expired.",
                    ),
                    Refusal::RedirectMismatch => (
                        "redirect_uri_mismatch",
                        "The redirect_uri MUST match the registered callback URL for this application.",
                    ),
                    Refusal::InvalidRefreshToken => (
                        "bad_refresh_token",
                        "The refresh token passed is incorrect or expired.",
                    ),
                    Refusal::UnknownClient | Refusal::WrongClientSecret => (
                        "incorrect_client_credentials",
                        "The client_id and/or client_secret passed are incorrect.",
                    ),
                    Refusal::UnsupportedGrantType => (
                        "unsupported_grant_type",
                        "The grant type is not supported.",
                    ),
                    Refusal::NotAForm | Refusal::RateLimited => {
                        return generic_refusal(refusal)
                    }
                };
                let mut fields: Vec<(&str, Value)> = vec![
                    ("error", error.into()),
                    ("error_description", description.into()),
                ];
                if error == "bad_verification_code" {
                    fields.push((
                        "error_uri",
                        "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code".into(),
                    ));
                }
                github(seen, &fields)
            }
            Shape::Slack => {
                let error = match refusal {
                    Refusal::ExpiredCode | Refusal::InvalidCode => "invalid_code",
                    Refusal::CodeUsed => "code_already_used",
                    Refusal::RedirectMismatch => "bad_redirect_uri",
                    Refusal::CodeVerifier => "invalid_code_verifier",
                    Refusal::InvalidRefreshToken => "invalid_refresh_token",
                    Refusal::UnknownClient => "invalid_client_id",
                    Refusal::WrongClientSecret => "bad_client_secret",
                    Refusal::UnsupportedGrantType => "invalid_grant_type",
                    Refusal::RateLimited => "ratelimited",
                    Refusal::NotAForm => "invalid_form_data",
                };
                Answer {
                    status: 200,
                    content_type: UTF8_JSON,
                    body: json!({"ok": false, "error": error}).to_string(),
                }
            }
        }
    }
}

/// expires_in and the refresh token, where the issue has them.
fn push_lifetime(fields: &mut Vec<(&str, Value)>, look: &Look, issue: &Issue) {
    if let Some(secs) = look.expires_in {
        fields.push(("expires_in", secs.into()));
    }
    if let Some(refresh_token) = &issue.refresh_token {
        fields.push(("refresh_token", refresh_token.clone().into()));
    }
}

/// A JSON object with its fields in the given order (as the providers' own answers are).
fn object(fields: &[(&str, Value)]) -> String {
    let members: Vec<String> = fields
        .iter()
        .map(|(name, value)| format!("{}:{value}", Value::from(*name)))
        .collect();
    format!("{{{}}}", members.join(","))
}

/// GitHub answers a form unless asked for JSON with `Accept`, and always with HTTP 200.
fn github(seen: &Seen, fields: &[(&str, Value)]) -> Answer {
    let wants_json = seen
        .header("accept")
        .is_some_and(|accept| accept.contains("application/json"));
    if wants_json {
        return Answer {
            status: 200,
            content_type: UTF8_JSON,
            body: object(fields),
        };
    }
    let mut form = form_urlencoded::Serializer::new(String::new());
    for (name, value) in fields {
        match value {
            Value::String(text) => form.append_pair(name, text),
            other => form.append_pair(name, &other.to_string()),
        };
    }
    Answer {
        status: 200,
        content_type: "application/x-www-form-urlencoded; charset=utf-8",
        body: form.finish(),
    }
}

fn salesforce_refusal(refusal: Refusal) -> Answer {
    let (error, description) = match refusal {
        Refusal::ExpiredCode => ("invalid_grant", "authorization code expired"),
        Refusal::InvalidCode | Refusal::CodeUsed => ("invalid_grant", "authentication failure"),
        Refusal::RedirectMismatch => ("invalid_grant", "redirect_uri mismatch"),
        Refusal::CodeVerifier => ("invalid_grant", "invalid code verifier"),
        Refusal::InvalidRefreshToken => ("invalid_grant", "expired access/refresh token"),
        Refusal::UnknownClient | Refusal::WrongClientSecret => {
            ("invalid_client", "invalid client credentials")
        }
        Refusal::UnsupportedGrantType => {
            return Answer::json(400, r#"{"error":"unsupported_grant_type"}"#)
        }
        Refusal::NotAForm => ("invalid_request", "unsupported content type"),
        Refusal::RateLimited => return generic_refusal(refusal),
    };
    Answer::json(
        400,
        object(&[
            ("error", error.into()),
            ("error_description", description.into()),
        ]),
    )
}

/// RFC 6749 §5.2 refusals, as a standard authorization server answers them.
fn generic_refusal(refusal: Refusal) -> Answer {
    let (status, error, description) = match refusal {
        Refusal::ExpiredCode => (400, "invalid_grant", "authorization code expired"),
        Refusal::InvalidCode => (400, "invalid_grant", "unknown authorization code"),
        Refusal::CodeUsed => (400, "invalid_grant", "code already used"),
        Refusal::RedirectMismatch => (400, "invalid_grant", "redirect_uri mismatch"),
        Refusal::CodeVerifier => (400, "invalid_grant", "code_verifier does not match"),
        Refusal::InvalidRefreshToken => (400, "invalid_grant", "unknown or revoked refresh token"),
        Refusal::UnknownClient | Refusal::WrongClientSecret => {
            (401, "invalid_client", "client authentication failed")
        }
        Refusal::UnsupportedGrantType => {
            (400, "unsupported_grant_type", "grant type not supported")
        }
        Refusal::NotAForm => (400, "invalid_request", "unsupported content type"),
        Refusal::RateLimited => (429, "temporarily_unavailable", "too many requests"),
    };
    Answer {
        status,
        content_type: "application/json",
        body: object(&[
            ("error", error.into()),
            ("error_description", description.into()),
        ]),
    }
}

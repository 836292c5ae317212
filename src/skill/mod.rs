//! The skill side: reading the linked account's token from Alexa's requests.
//!
//! Once a user has linked their account, Alexa sends the access token the bridge answered with
//! every request to the skill (ALEXA_OAUTH_FACTS §3):
//!
//! | request | where the token is |
//! | --- | --- |
//! | custom skill (`LaunchRequest`, `IntentRequest`, …) | `context.System.user.accessToken`, also `session.user.accessToken` |
//! | smart home, video, meetings directive (`TurnOn`, …) | `directive.endpoint.scope.token` |
//! | smart home `Alexa.Discovery` `Discover` | `directive.payload.scope.token` |
//! | `Alexa.Authorization` `AcceptGrant` | `directive.payload.grantee.token` |
//!
//! [`AlexaRequest`] parses any of these envelopes (unknown fields are ignored, missing ones are
//! `None`), tells which [`RequestKind`] it is, finds the token, and unpacks it with
//! [`PackedToken`] into the upstream's access token and the fields the bridge packed (such as
//! Salesforce's `instance_url`). When the user has not linked, [`AlexaRequest::not_linked_response`]
//! is the answer Alexa documents: a `LinkAccount` card for a custom skill, an `ErrorResponse`
//! event with `INVALID_AUTHORIZATION_CREDENTIAL` for a smart home directive.
//!
//! ```
//! use account_link_bridge::skill::{AlexaRequest, RequestKind};
//!
//! let body = br#"{
//!   "version": "1.0",
//!   "session": {"new": true, "user": {"userId": "amzn1.ask.account.A"}},
//!   "context": {"System": {"user": {
//!     "userId": "amzn1.ask.account.A",
//!     "accessToken": "00Dx0!AR8AQ https://na1.salesforce.com"
//!   }}},
//!   "request": {"type": "LaunchRequest", "requestId": "amzn1.echo-api.request.1"}
//! }"#;
//! let request = AlexaRequest::from_slice(body).unwrap();
//! assert_eq!(request.kind(), RequestKind::CustomSkill);
//! let account = request.linked_account().unwrap();
//! assert_eq!(account.access_token(), "00Dx0!AR8AQ");
//! assert_eq!(account.instance_url(), Some("https://na1.salesforce.com"));
//! ```
//!
//! With the `axum` feature, `LinkedAccount` does all of this as an axum extractor.
//!
//! A skill served as a web service (not from Lambda) must also verify that each request comes
//! from Alexa; with the `verify` feature, [`verify::VerifyAlexaRequestLayer`] does that in
//! front of the skill's route (and `LinkedAccount` behind it reuses the envelope it parsed).

#[cfg(feature = "axum")]
mod extract;
mod response;
#[cfg(feature = "verify")]
pub mod verify;

use std::error::Error as StdError;
use std::fmt;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::{pack::PackFormat, pack::UnpackError, PackedToken};

#[cfg(feature = "axum")]
pub use self::extract::{LinkedAccount, LinkedAccountRejection};
pub use self::response::{link_account_response, SmartHomeErrorType, DEFAULT_LINK_ACCOUNT_SPEECH};

/// The kind of Alexa request, which decides where the token is and how to say "not linked".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RequestKind {
    /// A custom skill request (`request.type` is `LaunchRequest`, `IntentRequest`, …).
    CustomSkill,
    /// A smart home (or video, meetings) directive other than `AcceptGrant`.
    SmartHome,
    /// The `Alexa.Authorization` `AcceptGrant` directive.
    AcceptGrant,
}

/// An Alexa request envelope: a custom skill request or a smart home directive.
///
/// Only the parts that concern account linking and answering are typed; every field is
/// optional and unknown fields are ignored, so new fields Alexa adds never break parsing.
/// `Debug` redacts every token and code.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct AlexaRequest {
    /// The custom skill envelope's `version` (`"1.0"`).
    pub version: Option<String>,
    /// The custom skill `session` (absent for some requests, such as AudioPlayer events).
    pub session: Option<Session>,
    /// The custom skill `context`.
    pub context: Option<Context>,
    /// The custom skill `request`.
    pub request: Option<SkillRequest>,
    /// The smart home `directive`.
    pub directive: Option<Directive>,
}

/// A custom skill's `session` object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Session {
    /// Whether this request starts the session.
    pub new: Option<bool>,
    /// The session's id.
    pub session_id: Option<String>,
    /// The skill's application id, as `{"applicationId": …}`.
    pub application: Option<Application>,
    /// The user, with `accessToken` once linked.
    pub user: Option<User>,
    /// Session attributes the skill set in its previous answer.
    pub attributes: Option<Map<String, Value>>,
}

/// A custom skill's `context` object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Context {
    /// `context.System`.
    #[serde(rename = "System")]
    pub system: Option<System>,
}

/// `context.System`: the skill, the user and the device.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct System {
    /// The skill's application id.
    pub application: Option<Application>,
    /// The user, with `accessToken` once linked.
    pub user: Option<User>,
    /// The device, as Alexa sent it.
    pub device: Option<Value>,
    /// The base URL of the Alexa APIs for this request's region.
    pub api_endpoint: Option<String>,
    /// A token for the Alexa APIs (not the linked account's).
    pub api_access_token: Option<String>,
}

impl fmt::Debug for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("System")
            .field("application", &self.application)
            .field("user", &self.user)
            .field("device", &self.device)
            .field("api_endpoint", &self.api_endpoint)
            .field("api_access_token", &redacted(&self.api_access_token))
            .finish()
    }
}

/// `{"applicationId": "amzn1.ask.skill.…"}`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Application {
    /// The skill id.
    pub application_id: Option<String>,
}

/// A custom skill's user: `session.user` or `context.System.user`.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct User {
    /// Alexa's id for the user of this skill.
    pub user_id: Option<String>,
    /// The linked account's token, as the bridge answered it (absent when not linked).
    pub access_token: Option<String>,
}

impl fmt::Debug for User {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("User")
            .field("user_id", &self.user_id)
            .field("access_token", &redacted(&self.access_token))
            .finish()
    }
}

/// A custom skill's `request` object.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct SkillRequest {
    /// `LaunchRequest`, `IntentRequest`, `SessionEndedRequest`, …
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The request's id.
    pub request_id: Option<String>,
    /// When Alexa sent it (ISO 8601).
    pub timestamp: Option<String>,
    /// The user's locale, such as `en-US`.
    pub locale: Option<String>,
    /// The intent, for an `IntentRequest`.
    pub intent: Option<Intent>,
}

/// The intent of an `IntentRequest`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Intent {
    /// The intent's name, such as `GetOpportunitiesIntent`.
    pub name: Option<String>,
    /// `NONE`, `CONFIRMED` or `DENIED`.
    pub confirmation_status: Option<String>,
    /// The slots, by name, as Alexa sent them.
    pub slots: Option<Map<String, Value>>,
}

/// A smart home `directive`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Directive {
    /// The directive's header.
    pub header: Option<DirectiveHeader>,
    /// The endpoint the directive is for (absent for `Discover` and `AcceptGrant`).
    pub endpoint: Option<Endpoint>,
    /// The payload.
    pub payload: Option<DirectivePayload>,
}

/// A smart home directive's `header`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct DirectiveHeader {
    /// The interface, such as `Alexa.PowerController`.
    pub namespace: Option<String>,
    /// The directive, such as `TurnOn`.
    pub name: Option<String>,
    /// The payload version, `"3"` for smart home v3.
    pub payload_version: Option<String>,
    /// The directive's message id.
    pub message_id: Option<String>,
    /// The token to echo in the answer's header.
    pub correlation_token: Option<String>,
}

/// A smart home directive's `endpoint`.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Endpoint {
    /// The endpoint's id, as the skill reported it at discovery.
    pub endpoint_id: Option<String>,
    /// The bearer token.
    pub scope: Option<Scope>,
    /// The cookie the skill reported at discovery.
    pub cookie: Option<Map<String, Value>>,
}

/// `{"type":"BearerToken","token":…}`: a smart home scope or `AcceptGrant` grantee.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Scope {
    /// `BearerToken` (or `BearerTokenWithPartition`).
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The linked account's token, as the bridge answered it.
    pub token: Option<String>,
}

impl fmt::Debug for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scope")
            .field("kind", &self.kind)
            .field("token", &redacted(&self.token))
            .finish()
    }
}

/// A smart home directive's `payload`: the parts that carry a token, and the rest.
#[derive(Clone, Default, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct DirectivePayload {
    /// The scope of a `Discover` directive.
    pub scope: Option<Scope>,
    /// The grantee of an `AcceptGrant` directive: the linked account's token.
    pub grantee: Option<Scope>,
    /// The grant of an `AcceptGrant` directive: an LWA authorization code.
    pub grant: Option<Grant>,
    /// Every other payload field, as Alexa sent it.
    #[serde(flatten)]
    pub other: Map<String, Value>,
}

impl fmt::Debug for DirectivePayload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DirectivePayload")
            .field("scope", &self.scope)
            .field("grantee", &self.grantee)
            .field("grant", &self.grant)
            .field("other", &self.other.keys().collect::<Vec<_>>())
            .finish()
    }
}

/// `AcceptGrant`'s `{"type":"OAuth2.AuthorizationCode","code":…}`, to exchange with Login with
/// Amazon for the tokens that let the skill send events to Alexa.
#[derive(Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
#[non_exhaustive]
pub struct Grant {
    /// `OAuth2.AuthorizationCode`.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// The authorization code.
    pub code: Option<String>,
}

impl fmt::Debug for Grant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Grant")
            .field("kind", &self.kind)
            .field("code", &redacted(&self.code))
            .finish()
    }
}

fn redacted(secret: &Option<String>) -> Option<&'static str> {
    secret.as_ref().map(|_| "[redacted]")
}

fn non_empty(value: &Option<String>) -> Option<&str> {
    value.as_deref().filter(|v| !v.is_empty())
}

impl AlexaRequest {
    /// Parses a request body: a custom skill request (with a `request` object) or a smart home
    /// directive (with a `directive` object).
    pub fn from_slice(body: &[u8]) -> Result<AlexaRequest, EnvelopeError> {
        let request: AlexaRequest =
            serde_json::from_slice(body).map_err(|e| EnvelopeError::Json(e.to_string()))?;
        if request.request.is_none() && request.directive.is_none() {
            return Err(EnvelopeError::NeitherRequestNorDirective);
        }
        Ok(request)
    }

    /// Whether this is a custom skill request, a smart home directive or `AcceptGrant`.
    pub fn kind(&self) -> RequestKind {
        let Some(directive) = &self.directive else {
            return RequestKind::CustomSkill;
        };
        let header = directive.header.as_ref();
        let namespace = header.and_then(|h| h.namespace.as_deref());
        let name = header.and_then(|h| h.name.as_deref());
        if namespace == Some("Alexa.Authorization") && name == Some("AcceptGrant") {
            RequestKind::AcceptGrant
        } else {
            RequestKind::SmartHome
        }
    }

    /// The linked account's token as Alexa sent it (still packed), or `None` when the user has
    /// not linked.
    ///
    /// A custom skill's is `context.System.user.accessToken`, else `session.user.accessToken`;
    /// a directive's is `directive.endpoint.scope.token`, else `directive.payload.scope.token`
    /// (`Discover`), else `directive.payload.grantee.token` (`AcceptGrant`). An empty string
    /// counts as none.
    pub fn access_token(&self) -> Option<&str> {
        if let Some(directive) = &self.directive {
            let endpoint = directive.endpoint.as_ref().and_then(|e| e.scope.as_ref());
            let payload = directive.payload.as_ref();
            let scope = payload.and_then(|p| p.scope.as_ref());
            let grantee = payload.and_then(|p| p.grantee.as_ref());
            return [endpoint, scope, grantee]
                .into_iter()
                .flatten()
                .find_map(|scope| non_empty(&scope.token));
        }
        let system = self.context.as_ref().and_then(|c| c.system.as_ref());
        let system_user = system.and_then(|s| s.user.as_ref());
        let session_user = self.session.as_ref().and_then(|s| s.user.as_ref());
        [system_user, session_user]
            .into_iter()
            .flatten()
            .find_map(|user| non_empty(&user.access_token))
    }

    /// The linked account: the token unpacked with Salesforce's format (the access token, then
    /// a space and the `instance_url`, then a space and the `api_instance_url` when there is
    /// one), which also reads an unpacked token as it is.
    pub fn linked_account(&self) -> Result<PackedToken, NotLinked> {
        self.linked_account_with(&PackFormat::salesforce())
    }

    /// The linked account, unpacked with the format the bridge packed it with.
    pub fn linked_account_with(&self, format: &PackFormat) -> Result<PackedToken, NotLinked> {
        let token = self.access_token().ok_or(NotLinked::NoToken)?;
        format.unpack(token).map_err(NotLinked::Unpack)
    }

    /// The custom skill's request type (`LaunchRequest`, `IntentRequest`, …).
    pub fn request_type(&self) -> Option<&str> {
        self.request.as_ref()?.kind.as_deref()
    }

    /// The intent's name, for an `IntentRequest`.
    pub fn intent_name(&self) -> Option<&str> {
        self.request.as_ref()?.intent.as_ref()?.name.as_deref()
    }

    /// The directive's header, for a smart home directive.
    pub fn directive_header(&self) -> Option<&DirectiveHeader> {
        self.directive.as_ref()?.header.as_ref()
    }

    /// The directive's endpoint id, when it has an endpoint.
    pub fn endpoint_id(&self) -> Option<&str> {
        self.directive
            .as_ref()?
            .endpoint
            .as_ref()?
            .endpoint_id
            .as_deref()
    }
}

/// Why a request body is not an Alexa request.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum EnvelopeError {
    /// The body is not JSON, or a field has the wrong type.
    Json(String),
    /// The JSON has neither a `request` nor a `directive` object.
    NeitherRequestNorDirective,
}

impl fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EnvelopeError::Json(e) => write!(f, "the body is not an Alexa request: {e}"),
            EnvelopeError::NeitherRequestNorDirective => {
                f.write_str("the body has neither a request nor a directive object")
            }
        }
    }
}

impl StdError for EnvelopeError {}

/// Why a request carries no usable linked account: the skill should answer
/// [`AlexaRequest::not_linked_response`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotLinked {
    /// The request has no token: the user has not linked (or Alexa could not refresh).
    NoToken,
    /// The token is not one the bridge packed with this format.
    Unpack(UnpackError),
}

impl fmt::Display for NotLinked {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NotLinked::NoToken => f.write_str("the request carries no linked account token"),
            NotLinked::Unpack(e) => write!(f, "the linked account token cannot be unpacked: {e}"),
        }
    }
}

impl StdError for NotLinked {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        match self {
            NotLinked::NoToken => None,
            NotLinked::Unpack(e) => Some(e),
        }
    }
}

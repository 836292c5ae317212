//! What a skill answers when the user has not linked: Alexa's documented bodies.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value};

use super::{AlexaRequest, RequestKind};

/// The speech [`AlexaRequest::not_linked_response`] uses for a custom skill.
pub const DEFAULT_LINK_ACCOUNT_SPEECH: &str =
    "To use this skill, please link your account in the Alexa app. I have sent a card there to help.";

/// A custom skill's answer asking the user to link their account: the speech, then a
/// `LinkAccount` card in the Alexa app, and the session ends.
///
/// ```
/// use account_link_bridge::skill::link_account_response;
///
/// let body = link_account_response("Please link your Salesforce account in the Alexa app.");
/// assert_eq!(body["response"]["card"]["type"], "LinkAccount");
/// assert_eq!(body["response"]["shouldEndSession"], true);
/// ```
pub fn link_account_response(speech: &str) -> Value {
    json!({
        "version": "1.0",
        "response": {
            "outputSpeech": {"type": "PlainText", "text": speech},
            "card": {"type": "LinkAccount"},
            "shouldEndSession": true
        }
    })
}

/// The `payload.type` of a smart home `ErrorResponse` about the linked account.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SmartHomeErrorType {
    /// `INVALID_AUTHORIZATION_CREDENTIAL` (namespace `Alexa`): no token, or one the skill's
    /// cloud does not accept.
    InvalidAuthorizationCredential,
    /// `EXPIRED_AUTHORIZATION_CREDENTIAL` (namespace `Alexa`): the token has expired.
    ExpiredAuthorizationCredential,
    /// `ACCEPT_GRANT_FAILED` (namespace `Alexa.Authorization`): the answer to an `AcceptGrant`
    /// the skill could not complete.
    AcceptGrantFailed,
}

impl SmartHomeErrorType {
    /// The value of `payload.type`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SmartHomeErrorType::InvalidAuthorizationCredential => {
                "INVALID_AUTHORIZATION_CREDENTIAL"
            }
            SmartHomeErrorType::ExpiredAuthorizationCredential => {
                "EXPIRED_AUTHORIZATION_CREDENTIAL"
            }
            SmartHomeErrorType::AcceptGrantFailed => "ACCEPT_GRANT_FAILED",
        }
    }

    fn namespace(&self) -> &'static str {
        match self {
            SmartHomeErrorType::AcceptGrantFailed => "Alexa.Authorization",
            _ => "Alexa",
        }
    }
}

impl AlexaRequest {
    /// The smart home `ErrorResponse` event answering this directive, as the
    /// `Alexa.ErrorResponse` interface documents it: a new `messageId`, the directive's
    /// `correlationToken` and `endpointId` when it had them, and `payload.type` and `message`.
    ///
    /// ```
    /// use account_link_bridge::skill::{AlexaRequest, SmartHomeErrorType};
    ///
    /// let request = AlexaRequest::from_slice(br#"{"directive":{
    ///   "header":{"namespace":"Alexa.PowerController","name":"TurnOn","payloadVersion":"3",
    ///             "messageId":"1bd5d003","correlationToken":"dFMb0z+PgpgdDmluhJ1LddFvSqZ=="},
    ///   "endpoint":{"endpointId":"appliance-001"},"payload":{}}}"#).unwrap();
    /// let event = request.smart_home_error_response(
    ///     SmartHomeErrorType::ExpiredAuthorizationCredential,
    ///     "the token has expired",
    /// );
    /// assert_eq!(event["event"]["header"]["name"], "ErrorResponse");
    /// assert_eq!(event["event"]["header"]["correlationToken"], "dFMb0z+PgpgdDmluhJ1LddFvSqZ==");
    /// assert_eq!(event["event"]["endpoint"]["endpointId"], "appliance-001");
    /// assert_eq!(event["event"]["payload"]["type"], "EXPIRED_AUTHORIZATION_CREDENTIAL");
    /// ```
    pub fn smart_home_error_response(&self, error: SmartHomeErrorType, message: &str) -> Value {
        let header = self.directive_header();
        let mut event_header = Map::new();
        event_header.insert("namespace".into(), error.namespace().into());
        event_header.insert("name".into(), "ErrorResponse".into());
        event_header.insert("payloadVersion".into(), "3".into());
        let seed = header.and_then(|h| h.message_id.as_deref()).unwrap_or("");
        event_header.insert("messageId".into(), new_message_id(seed).into());
        if let Some(token) = header.and_then(|h| h.correlation_token.as_deref()) {
            event_header.insert("correlationToken".into(), token.into());
        }
        let mut event = Map::new();
        event.insert("header".into(), Value::Object(event_header));
        if let Some(endpoint_id) = self.endpoint_id() {
            event.insert("endpoint".into(), json!({ "endpointId": endpoint_id }));
        }
        event.insert(
            "payload".into(),
            json!({ "type": error.as_str(), "message": message }),
        );
        json!({ "event": event })
    }

    /// The answer when the request carries no linked account (Alexa expects it with HTTP 200):
    ///
    /// - custom skill: [`link_account_response`] with [`DEFAULT_LINK_ACCOUNT_SPEECH`];
    /// - smart home directive: `ErrorResponse` with `INVALID_AUTHORIZATION_CREDENTIAL`;
    /// - `AcceptGrant`: `Alexa.Authorization` `ErrorResponse` with `ACCEPT_GRANT_FAILED`.
    pub fn not_linked_response(&self) -> Value {
        match self.kind() {
            RequestKind::CustomSkill => link_account_response(DEFAULT_LINK_ACCOUNT_SPEECH),
            RequestKind::SmartHome => self.smart_home_error_response(
                SmartHomeErrorType::InvalidAuthorizationCredential,
                "The request carries no valid linked account token.",
            ),
            RequestKind::AcceptGrant => self.smart_home_error_response(
                SmartHomeErrorType::AcceptGrantFailed,
                "The AcceptGrant directive carries no valid linked account token.",
            ),
        }
    }
}

/// A fresh version 4 UUID for an event's `messageId` (Alexa asks for "a unique identifier,
/// preferably a version 4 UUID"). Unique, not secret: it mixes the directive's id, a process
/// counter, the time and std's per-process random SipHash keys, which avoids a dependency.
fn new_message_id(seed: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let keys = RandomState::new();
    let mut first = keys.build_hasher();
    first.write(seed.as_bytes());
    first.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    first.write_u128(nanos);
    let high = first.finish();
    let mut second = keys.build_hasher();
    second.write_u64(high);
    second.write_u8(0x5a);
    let low = second.finish();

    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&high.to_be_bytes());
    bytes[8..].copy_from_slice(&low.to_be_bytes());
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids_are_distinct_version_4_uuids() {
        let a = new_message_id("m");
        let b = new_message_id("m");
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
        assert_eq!(a.matches('-').count(), 4);
    }
}

//! The axum extractor (feature `axum`).

use std::fmt;

use axum::body::{Body, Bytes};
use axum::extract::rejection::BytesRejection;
use axum::extract::{FromRequest, Request};
use axum::response::{IntoResponse, Response};
use http::header::CONTENT_TYPE;
use http::StatusCode;
use serde_json::Value;

use super::{AlexaRequest, EnvelopeError, NotLinked};
use crate::{pack::PackFormat, PackedToken};

/// An axum extractor: the Alexa request in the body, and the linked account's token unpacked.
///
/// It reads the body as an [`AlexaRequest`] (or, behind
/// [`VerifyAlexaRequestLayer`](crate::skill::verify::VerifyAlexaRequestLayer), takes the one the
/// layer parsed from the verified body) and unpacks its token with the [`PackFormat`] found
/// in the request extensions (add one with `axum::Extension(format)` as a layer), else
/// [`PackFormat::salesforce`], which also reads tokens that were not packed. When the request
/// carries no token it rejects with [`AlexaRequest::not_linked_response`] and HTTP 200, as
/// Alexa expects: the link-account card for a custom skill, the `ErrorResponse` event for a
/// smart home directive.
///
/// ```
/// use account_link_bridge::skill::LinkedAccount;
/// use axum::{routing::post, Json, Router};
/// use serde_json::{json, Value};
///
/// async fn skill(account: LinkedAccount) -> Json<Value> {
///     // Call the upstream API with account.access_token() at account.instance_url().
///     let speech = format!("Your org is at {}", account.instance_url().unwrap_or("?"));
///     Json(json!({"version": "1.0", "response": {
///         "outputSpeech": {"type": "PlainText", "text": speech}, "shouldEndSession": true}}))
/// }
///
/// let app: Router = Router::new().route("/skill", post(skill));
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct LinkedAccount {
    /// The token, unpacked.
    pub token: PackedToken,
    /// The parsed request envelope.
    pub request: AlexaRequest,
}

impl LinkedAccount {
    /// The upstream's own access token, for `Authorization: Bearer …` on its APIs.
    pub fn access_token(&self) -> &str {
        self.token.access_token()
    }

    /// The packed `instance_url` (Salesforce), if there was one.
    pub fn instance_url(&self) -> Option<&str> {
        self.token.instance_url()
    }

    /// The packed `api_instance_url` (Salesforce's JWT-format tokens), if there was one.
    pub fn api_instance_url(&self) -> Option<&str> {
        self.token.api_instance_url()
    }
}

impl<S> FromRequest<S> for LinkedAccount
where
    S: Send + Sync,
{
    type Rejection = LinkedAccountRejection;

    async fn from_request(mut request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let format = request
            .extensions()
            .get::<PackFormat>()
            .cloned()
            .unwrap_or_else(PackFormat::salesforce);
        let request = match verified_envelope(&mut request) {
            Some(envelope) => envelope,
            None => {
                let body = Bytes::from_request(request, state)
                    .await
                    .map_err(LinkedAccountRejection::Body)?;
                AlexaRequest::from_slice(&body).map_err(LinkedAccountRejection::Envelope)?
            }
        };
        match request.linked_account_with(&format) {
            Ok(token) => Ok(LinkedAccount { token, request }),
            Err(reason) => Err(LinkedAccountRejection::NotLinked {
                answer: request.not_linked_response(),
                reason,
            }),
        }
    }
}

/// The envelope [`VerifyAlexaRequestLayer`](crate::skill::verify::VerifyAlexaRequestLayer)
/// already parsed from the verified body, so that it is not parsed twice.
#[cfg(feature = "verify")]
fn verified_envelope(request: &mut Request) -> Option<AlexaRequest> {
    use crate::skill::verify::VerifiedAlexaRequest;
    // The extractor consumes the request, so taking the record out costs no one anything.
    let verified = request.extensions_mut().remove::<VerifiedAlexaRequest>()?;
    Some(verified.into_envelope())
}

#[cfg(not(feature = "verify"))]
fn verified_envelope(_request: &mut Request) -> Option<AlexaRequest> {
    None
}

/// Why [`LinkedAccount`] rejected a request; each variant is also the response to send.
#[non_exhaustive]
pub enum LinkedAccountRejection {
    /// The request carries no usable token: answered with 200 and `answer`, the link-account
    /// response or smart home `ErrorResponse` Alexa expects.
    NotLinked {
        /// Why.
        reason: NotLinked,
        /// The JSON body to answer.
        answer: Value,
    },
    /// The body is not an Alexa request: 400.
    Envelope(EnvelopeError),
    /// The body could not be read (too large, broken off): axum's own answer.
    Body(BytesRejection),
}

impl fmt::Debug for LinkedAccountRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkedAccountRejection::NotLinked { reason, .. } => {
                f.debug_tuple("NotLinked").field(reason).finish()
            }
            LinkedAccountRejection::Envelope(e) => f.debug_tuple("Envelope").field(e).finish(),
            LinkedAccountRejection::Body(e) => f.debug_tuple("Body").field(e).finish(),
        }
    }
}

impl fmt::Display for LinkedAccountRejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkedAccountRejection::NotLinked { reason, .. } => reason.fmt(f),
            LinkedAccountRejection::Envelope(e) => e.fmt(f),
            LinkedAccountRejection::Body(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for LinkedAccountRejection {}

impl IntoResponse for LinkedAccountRejection {
    fn into_response(self) -> Response {
        match self {
            LinkedAccountRejection::NotLinked { answer, .. } => Response::builder()
                .status(StatusCode::OK)
                .header(CONTENT_TYPE, crate::json_content_type())
                .body(Body::from(answer.to_string()))
                .expect("a static status and header are valid"),
            LinkedAccountRejection::Envelope(e) => {
                (StatusCode::BAD_REQUEST, e.to_string()).into_response()
            }
            LinkedAccountRejection::Body(e) => e.into_response(),
        }
    }
}

//! Implicit mode: `/callback` redeems the upstream code itself and hands Alexa the token in the
//! redirect's fragment.

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Mutex;

use bytes::Bytes;
use http::header::{ACCEPT, CONTENT_LENGTH, CONTENT_TYPE};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use tower_service::Service;

use crate::body::{Collector, FullBody};
use crate::{ErrorCode, OAuthError};

/// The largest token answer read.
const ANSWER_LIMIT: usize = 64 * 1024;

/// The token service, with its types erased so [`AuthorizeRedirect`](super::AuthorizeRedirect)
/// stays one type.
pub(crate) trait TokenCall: Send + Sync + 'static {
    fn call(&self, request: Request<FullBody>) -> TokenFuture;
}

// Boxed: the future awaits a network round trip, next to which one allocation is noise, and
// erasing the token service's type keeps `AuthorizeRedirect` free of a type parameter.
pub(crate) type TokenFuture = Pin<Box<dyn Future<Output = TokenAnswer> + Send>>;

/// What the token service answered, reduced to what the fragment needs.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenAnswer {
    Token {
        access_token: String,
        token_type: String,
        expires_in: Option<u64>,
    },
    Error {
        code: ErrorCode,
        description: Option<String>,
    },
}

/// Adapts a Tower service; the mutex only guards cloning it (the call runs on the clone).
pub(crate) struct ServiceTokenCall<S> {
    service: Mutex<S>,
}

impl<S> ServiceTokenCall<S> {
    pub(crate) fn new(service: S) -> Self {
        ServiceTokenCall {
            service: Mutex::new(service),
        }
    }
}

impl<S, B> TokenCall for ServiceTokenCall<S>
where
    S: Service<Request<FullBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    B: http_body::Body<Data = Bytes> + Send + 'static,
    B::Error: Send + 'static,
{
    fn call(&self, request: Request<FullBody>) -> TokenFuture {
        let mut service = match self.service.lock() {
            Ok(service) => service.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        Box::pin(async move {
            let fault = || TokenAnswer::Error {
                code: ErrorCode::SERVER_ERROR,
                description: Some("the token exchange with the authorization server failed".into()),
            };
            if poll_fn(|cx| service.poll_ready(cx)).await.is_err() {
                return fault();
            }
            let Ok(response) = service.call(request).await else {
                return fault();
            };
            let (parts, body) = response.into_parts();
            let mut body = Box::pin(body);
            let mut collector = Collector::new(ANSWER_LIMIT);
            match poll_fn(|cx| collector.poll_collect(body.as_mut(), cx)).await {
                Ok(bytes) => read_answer(parts.status, &bytes).unwrap_or_else(fault),
                Err(_) => fault(),
            }
        })
    }
}

/// The form POST the token service receives.
pub(crate) fn token_request(
    code: &str,
    callback_url: &str,
    client_id: Option<&str>,
    client_secret: Option<&str>,
    verifier: Option<&str>,
) -> Request<FullBody> {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("grant_type", "authorization_code")
        .append_pair("code", code)
        .append_pair("redirect_uri", callback_url);
    if let Some(client_id) = client_id {
        form.append_pair("client_id", client_id);
    }
    if let Some(client_secret) = client_secret {
        form.append_pair("client_secret", client_secret);
    }
    if let Some(verifier) = verifier {
        form.append_pair("code_verifier", verifier);
    }
    let body = form.finish();
    let mut request = Request::new(FullBody::from(body.clone()));
    *request.method_mut() = Method::POST;
    *request.uri_mut() = http::Uri::from_static("/token");
    let headers = request.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded"),
    );
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
    request
}

/// Reads an RFC 6749 JSON answer; `None` when it is neither a token nor an error.
fn read_answer(status: StatusCode, body: &[u8]) -> Option<TokenAnswer> {
    let answer: serde_json::Value = serde_json::from_slice(body).ok()?;
    if status.is_success() {
        if let Some(access_token) = answer["access_token"].as_str() {
            return Some(TokenAnswer::Token {
                access_token: access_token.to_owned(),
                token_type: answer["token_type"]
                    .as_str()
                    .filter(|t| !t.is_empty())
                    .unwrap_or("Bearer")
                    .to_owned(),
                expires_in: answer["expires_in"].as_u64(),
            });
        }
    }
    let code = answer["error"].as_str()?;
    let error = OAuthError::new(ErrorCode::new(code.to_owned()), status);
    let error = match answer["error_description"].as_str() {
        Some(description) => error.with_description(truncate(description).to_owned()),
        None => error,
    };
    Some(TokenAnswer::Error {
        code: error.code().clone(),
        description: error.description().map(str::to_owned),
    })
}

/// Cuts a description to at most 200 bytes on a character boundary.
pub(crate) fn truncate(text: &str) -> &str {
    let mut end = text.len().min(200);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_answer_is_read_with_a_default_token_type() {
        let answer = read_answer(
            StatusCode::OK,
            br#"{"access_token":"00D!x","expires_in":5400}"#,
        );
        assert_eq!(
            answer,
            Some(TokenAnswer::Token {
                access_token: "00D!x".into(),
                token_type: "Bearer".into(),
                expires_in: Some(5400),
            })
        );
    }

    #[test]
    fn an_error_answer_is_read_and_cleaned() {
        let answer = read_answer(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"expired \"code\""}"#,
        );
        assert_eq!(
            answer,
            Some(TokenAnswer::Error {
                code: ErrorCode::INVALID_GRANT,
                description: Some("expired ?code?".into()),
            })
        );
    }

    #[test]
    fn html_or_a_token_with_an_error_status_is_not_an_answer() {
        assert_eq!(read_answer(StatusCode::OK, b"<html>"), None);
        assert_eq!(
            read_answer(StatusCode::BAD_GATEWAY, br#"{"access_token":"x"}"#),
            None
        );
    }

    #[test]
    fn the_token_request_is_an_encoded_form() {
        let request = token_request(
            "a&b",
            "https://bridge.example.com/callback",
            Some("id"),
            None,
            Some("v"),
        );
        assert_eq!(request.method(), Method::POST);
        assert_eq!(
            request.body().as_bytes(),
            b"grant_type=authorization_code&code=a%26b&redirect_uri=https%3A%2F%2Fbridge.example.com%2Fcallback&client_id=id&code_verifier=v"
        );
    }

    #[test]
    fn truncation_respects_character_boundaries() {
        let text = "é".repeat(150);
        assert_eq!(truncate(&text).len(), 200);
        assert_eq!(truncate("short"), "short");
    }
}

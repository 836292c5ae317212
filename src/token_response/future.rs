//! The response future of [`RewriteTokenResponse`](super::RewriteTokenResponse).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};
use std::time::Instant;

use http::header::{CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE, PRAGMA};
use http::response::Parts;
use http::{HeaderValue, Response, StatusCode};
use http_body::Body;
use pin_project_lite::pin_project;

use super::rewrite::{rewrite, RewriteReport};
use crate::body::{CollectError, Collector, FullBody};
use crate::outcome::Outcome;
use crate::provider::ResponsePolicy;
use crate::{OAuthError, TokenRequest};

pin_project! {
    /// Waits for the upstream's answer, reads its body, and answers the rewritten JSON.
    pub struct ResponseFuture<F, B> {
        #[pin]
        state: State<F, B>,
        token_request: Option<TokenRequest>,
        policy: Arc<ResponsePolicy>,
        // When the upstream was called, for the report's upstream latency.
        called: Instant,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F, B> {
        Calling {
            #[pin]
            future: F,
        },
        Reading {
            #[pin]
            body: B,
            parts: Option<Parts>,
            collector: Collector,
        },
    }
}

impl<F, B> ResponseFuture<F, B> {
    pub(super) fn new(
        future: F,
        token_request: Option<TokenRequest>,
        policy: Arc<ResponsePolicy>,
    ) -> Self {
        ResponseFuture {
            state: State::Calling { future },
            token_request,
            policy,
            called: Instant::now(),
        }
    }
}

impl<F, B, E> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<Response<B>, E>>,
    B: Body,
{
    type Output = Result<Response<FullBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            match this.state.as_mut().project() {
                StateProj::Calling { future } => {
                    let response = ready!(future.poll(cx))?;
                    let (parts, body) = response.into_parts();
                    if let Some(error) = parts.extensions.get::<OAuthError>() {
                        // An answer the upstream client made itself (refused, timed out): it
                        // already says what happened, so it is relayed as it is.
                        let mut report = RewriteReport::new(None);
                        report.grant_type = grant_type(this.token_request);
                        report.answered_error = Some(error.code().clone());
                        report.upstream_latency = Some(this.called.elapsed());
                        let outcome = match error.status() {
                            StatusCode::GATEWAY_TIMEOUT => Outcome::Timeout,
                            // The upstream client answers 503 of itself only when it sheds a call.
                            StatusCode::SERVICE_UNAVAILABLE => Outcome::Shed,
                            _ => Outcome::Unreachable,
                        };
                        let response = error.clone().into_response();
                        return Poll::Ready(Ok(with_report(response, report, outcome)));
                    }
                    let collector = Collector::new(this.policy.body_limit);
                    this.state.set(State::Reading {
                        body,
                        parts: Some(parts),
                        collector,
                    });
                }
                StateProj::Reading {
                    body,
                    parts,
                    collector,
                } => {
                    let collected = ready!(collector.poll_collect(body, cx));
                    let parts = parts.take().expect("polled after completion");
                    let mut report = RewriteReport::new(Some(parts.status));
                    report.grant_type = grant_type(this.token_request);
                    report.upstream_latency = Some(this.called.elapsed());
                    let result = match collected {
                        Ok(bytes) => rewrite(
                            parts.status,
                            &parts.headers,
                            &bytes,
                            this.token_request.as_ref(),
                            this.policy,
                            &mut report,
                        ),
                        Err(CollectError::TooLarge) => Err(OAuthError::server_error(format!(
                            "upstream answer exceeded {} bytes",
                            this.policy.body_limit
                        ))),
                        Err(CollectError::Body(_)) => Err(OAuthError::server_error(format!(
                            "upstream answer (HTTP {}) broke off before its end",
                            parts.status.as_u16()
                        ))),
                    };
                    let mut outcome = Outcome::Token;
                    let response = match result {
                        Ok(json) => token_response(json),
                        Err(error) => {
                            tracing::debug!(
                                target: "account_link_bridge::token",
                                upstream_status = parts.status.as_u16(),
                                error = %error.code(),
                                status = error.status().as_u16(),
                                "upstream answer mapped to an error"
                            );
                            report.answered_error = Some(error.code().clone());
                            // A relayed OAuth error is the upstream's refusal; any other error
                            // (and any 502-504) is a fault on the path.
                            let relayed = report.upstream_error.is_some()
                                && !matches!(error.status().as_u16(), 502..=504);
                            outcome = if relayed {
                                Outcome::UpstreamError
                            } else {
                                Outcome::UpstreamFault
                            };
                            error.into_response()
                        }
                    };
                    return Poll::Ready(Ok(with_report(response, report, outcome)));
                }
            }
        }
    }
}

fn grant_type(request: &Option<TokenRequest>) -> Option<crate::oauth::GrantType> {
    request.as_ref().map(|r| r.grant_type().clone())
}

fn with_report(
    mut response: Response<FullBody>,
    report: RewriteReport,
    outcome: Outcome,
) -> Response<FullBody> {
    response.extensions_mut().insert(report);
    response.extensions_mut().insert(outcome);
    response
}

/// A token answer: `json` with the headers every token answer carries (RFC 6749 §5.1).
pub(crate) fn token_response(json: bytes::Bytes) -> Response<FullBody> {
    let length = json.len();
    let mut response = Response::new(FullBody::new(json));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, crate::json_content_type());
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(PRAGMA, HeaderValue::from_static("no-cache"));
    headers.insert(CONTENT_LENGTH, HeaderValue::from(length));
    response
}

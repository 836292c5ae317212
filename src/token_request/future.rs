//! The response future of [`NormalizeTokenRequest`](super::NormalizeTokenRequest).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use http::request::Parts;
use http::{Request, Response};
use http_body::Body;
use pin_project_lite::pin_project;
use tower_service::Service;

use super::{upstream_request, RequestFacts};
use crate::body::{CollectError, Collector, FullBody, ResponseBody};
use crate::oauth::TokenRequest;
use crate::outcome::Outcome;
use crate::provider::RequestPolicy;
use crate::OAuthError;

pin_project! {
    /// Reads Alexa's body, then calls the inner service with the normalized request, or answers
    /// an RFC 6749 error without calling it.
    pub struct ResponseFuture<S, B>
    where
        S: Service<Request<FullBody>>,
    {
        #[pin]
        state: State<S, B, S::Future>,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<S, B, F> {
        Reading {
            #[pin]
            body: B,
            parts: Option<Parts>,
            collector: Collector,
            inner: Option<S>,
            policy: Arc<RequestPolicy>,
        },
        Calling {
            #[pin]
            future: F,
            facts: Option<RequestFacts>,
        },
        Refused {
            error: Option<OAuthError>,
            facts: Option<RequestFacts>,
        },
    }
}

impl<S, B> ResponseFuture<S, B>
where
    S: Service<Request<FullBody>>,
{
    pub(super) fn reading(parts: Parts, body: B, inner: S, policy: Arc<RequestPolicy>) -> Self {
        ResponseFuture {
            state: State::Reading {
                body,
                parts: Some(parts),
                collector: Collector::new(policy.body_limit),
                inner: Some(inner),
                policy,
            },
        }
    }

    pub(super) fn refused(error: OAuthError) -> Self {
        ResponseFuture {
            state: State::Refused {
                error: Some(error),
                facts: None,
            },
        }
    }
}

impl<S, B, ResBody> Future for ResponseFuture<S, B>
where
    S: Service<Request<FullBody>, Response = Response<ResBody>>,
    B: Body,
{
    type Output = Result<Response<ResponseBody<ResBody>>, S::Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        loop {
            let next = match this.state.as_mut().project() {
                StateProj::Reading {
                    body,
                    parts,
                    collector,
                    inner,
                    policy,
                } => match ready!(collector.poll_collect(body, cx)) {
                    Err(CollectError::TooLarge) => State::Refused {
                        error: Some(OAuthError::payload_too_large(policy.body_limit)),
                        facts: parts.as_ref().map(|p| RequestFacts::of_headers(&p.headers)),
                    },
                    Err(CollectError::Body(_)) => State::Refused {
                        error: Some(OAuthError::invalid_request(
                            "the request body could not be read",
                        )),
                        facts: parts.as_ref().map(|p| RequestFacts::of_headers(&p.headers)),
                    },
                    Ok(bytes) => {
                        let parts = parts.take().expect("polled after completion");
                        let mut facts = RequestFacts::of_headers(&parts.headers);
                        let parsed =
                            TokenRequest::parse_with(&parts.headers, &bytes, &policy.grant_types)
                                .and_then(|mut request| {
                                    facts.alexa_sent(&request);
                                    for hook in &policy.hooks {
                                        hook.apply(&mut request)?;
                                    }
                                    Ok(request)
                                });
                        match parsed {
                            Err(error) => {
                                tracing::debug!(
                                    target: "account_link_bridge::token",
                                    error = %error.code(),
                                    status = error.status().as_u16(),
                                    "token request refused"
                                );
                                facts.refused = Some(error.code().clone());
                                State::Refused {
                                    error: Some(error),
                                    facts: Some(facts),
                                }
                            }
                            Ok(token_request) => {
                                let request =
                                    upstream_request(parts, token_request, policy, &mut facts);
                                let mut inner = inner.take().expect("polled after completion");
                                State::Calling {
                                    future: inner.call(request),
                                    facts: Some(facts),
                                }
                            }
                        }
                    }
                },
                StateProj::Calling { future, facts } => {
                    let mut response = ready!(future.poll(cx))?;
                    if let Some(facts) = facts.take() {
                        response.extensions_mut().insert(facts);
                    }
                    return Poll::Ready(Ok(response.map(ResponseBody::inner)));
                }
                StateProj::Refused { error, facts } => {
                    let error = error.take().expect("polled after completion");
                    let mut facts = facts.take().unwrap_or_default();
                    facts.refused = Some(error.code().clone());
                    let mut response: Response<ResponseBody<ResBody>> = error.into_response();
                    response.extensions_mut().insert(facts);
                    response.extensions_mut().insert(Outcome::Refused);
                    return Poll::Ready(Ok(response));
                }
            };
            this.state.set(next);
        }
    }
}

//! The response future of [`AuthorizeRedirect`](super::AuthorizeRedirect).

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::Response;

use super::report::AuthorizeReport;
use crate::body::FullBody;

/// The response future of [`AuthorizeRedirect`](super::AuthorizeRedirect): ready at once for
/// `/authorize`; `/callback` waits for the nonce cache and, in implicit mode, for the token
/// exchange.
pub struct ResponseFuture {
    kind: Kind,
    report: Option<AuthorizeReport>,
}

pub(super) type Pending =
    Pin<Box<dyn Future<Output = (Response<FullBody>, AuthorizeReport)> + Send>>;

enum Kind {
    Ready(Option<Response<FullBody>>),
    Pending(Pending),
}

impl ResponseFuture {
    pub(super) fn ready(response: Response<FullBody>) -> Self {
        ResponseFuture {
            kind: Kind::Ready(Some(response)),
            report: None,
        }
    }

    pub(super) fn with_report(mut self, report: AuthorizeReport) -> Self {
        self.report = Some(report);
        self
    }

    pub(super) fn pending(future: Pending) -> Self {
        ResponseFuture {
            kind: Kind::Pending(future),
            report: None,
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<FullBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let (mut response, report) = match &mut this.kind {
            Kind::Ready(response) => (
                response.take().expect("polled after completion"),
                this.report.take(),
            ),
            Kind::Pending(future) => {
                let (response, report) = std::task::ready!(future.as_mut().poll(cx));
                (response, Some(report))
            }
        };
        if let Some(report) = report {
            response.extensions_mut().insert(report);
        }
        Poll::Ready(Ok(response))
    }
}

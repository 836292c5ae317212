//! The layer, the middleware and its future.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

use super::exchange::exchange;
use super::settings::RefreshRecords;
use crate::body::FullBody;

/// [module docs](super). Without records it passes every request through untouched.
#[derive(Clone, Debug, Default)]
pub struct RecordRefreshLayer {
    records: Option<RefreshRecords>,
}

impl RecordRefreshLayer {
    /// The layer keeping `records`.
    pub fn new(records: RefreshRecords) -> Self {
        RecordRefreshLayer {
            records: Some(records),
        }
    }

    /// The layer that keeps nothing: every request passes through.
    pub fn off() -> Self {
        RecordRefreshLayer { records: None }
    }
}

impl<S> Layer<S> for RecordRefreshLayer {
    type Service = RecordRefresh<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RecordRefresh {
            inner,
            records: self.records.clone(),
        }
    }
}

/// Middleware that keeps refresh records: see the [module docs](super).
#[derive(Clone)]
pub struct RecordRefresh<S> {
    inner: S,
    records: Option<RefreshRecords>,
}

impl<S> RecordRefresh<S> {
    /// Wraps `inner`, keeping `records`.
    pub fn new(inner: S, records: RefreshRecords) -> Self {
        RecordRefreshLayer::new(records).layer(inner)
    }

    /// Keeps these records from now on (or none).
    pub fn set_records(&mut self, records: Option<RefreshRecords>) {
        self.records = records;
    }

    crate::inner_service_accessors!();
}

impl<S: fmt::Debug> fmt::Debug for RecordRefresh<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RecordRefresh")
            .field("inner", &self.inner)
            .field("records", &self.records)
            .finish()
    }
}

impl<S> Service<Request<FullBody>> for RecordRefresh<S>
where
    S: Service<Request<FullBody>, Response = Response<FullBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
{
    type Response = Response<FullBody>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<FullBody>) -> Self::Future {
        let Some(records) = &self.records else {
            return ResponseFuture {
                kind: Kind::Through {
                    future: self.inner.call(request),
                },
            };
        };
        let clone = self.inner.clone();
        let inner = std::mem::replace(&mut self.inner, clone);
        ResponseFuture {
            kind: Kind::Recording {
                future: Box::pin(exchange(records.settings.clone(), inner, request)),
            },
        }
    }
}

type Recording<E> = Pin<Box<dyn Future<Output = Result<Response<FullBody>, E>> + Send>>;

pin_project! {
    /// The future of [`RecordRefresh`]: the inner call itself when records are off; with
    /// records, a boxed future (store round trips and a task; one allocation is noise there).
    pub struct ResponseFuture<F, E> {
        #[pin]
        kind: Kind<F, E>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, E> {
        Through { #[pin] future: F },
        Recording { future: Recording<E> },
    }
}

impl<F, E> Future for ResponseFuture<F, E>
where
    F: Future<Output = Result<Response<FullBody>, E>>,
{
    type Output = Result<Response<FullBody>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Through { future } => future.poll(cx),
            KindProj::Recording { future } => future.as_mut().poll(cx),
        }
    }
}

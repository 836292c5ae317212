//! Body types of the layers, and bounded buffering.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;

/// A body held whole in memory: what the bridge sends upstream after normalizing a token
/// request, and what it answers after rewriting a token response.
#[derive(Clone, Debug, Default)]
pub struct FullBody {
    data: Option<Bytes>,
}

impl FullBody {
    /// A body of these bytes.
    pub fn new(data: Bytes) -> Self {
        FullBody {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// The bytes not yet sent.
    pub fn as_bytes(&self) -> &[u8] {
        self.data.as_deref().unwrap_or_default()
    }
}

impl From<Bytes> for FullBody {
    fn from(data: Bytes) -> Self {
        FullBody::new(data)
    }
}

impl From<String> for FullBody {
    fn from(data: String) -> Self {
        FullBody::new(Bytes::from(data))
    }
}

impl From<&'static str> for FullBody {
    fn from(data: &'static str) -> Self {
        FullBody::new(Bytes::from_static(data.as_bytes()))
    }
}

impl Body for FullBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.data.take().map(|d| Ok(Frame::data(d))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

pin_project! {
    /// The response body of [`NormalizeTokenRequest`](crate::token_request::NormalizeTokenRequest): the inner
    /// service's body untouched, or the RFC 6749 error the layer answered itself.
    pub struct ResponseBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner { #[pin] body: B },
        Full { body: FullBody },
    }
}

impl<B> ResponseBody<B> {
    pub(crate) fn inner(body: B) -> Self {
        ResponseBody {
            kind: Kind::Inner { body },
        }
    }

    /// A body of its own, with no inner body (an answer the bridge makes itself).
    pub fn full(body: FullBody) -> Self {
        ResponseBody {
            kind: Kind::Full { body },
        }
    }
}

#[cfg(feature = "client")]
impl ResponseBody<FullBody> {
    /// Re-types a body that holds no inner body of its own.
    pub fn into_other<B>(self) -> ResponseBody<B> {
        match self.kind {
            Kind::Inner { body } | Kind::Full { body } => ResponseBody::full(body),
        }
    }
}

impl<B> From<Bytes> for ResponseBody<B> {
    fn from(data: Bytes) -> Self {
        ResponseBody::full(FullBody::new(data))
    }
}

impl<B> Body for ResponseBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        match self.project().kind.project() {
            KindProj::Inner { body } => body.poll_frame(cx),
            KindProj::Full { body } => Poll::Ready(body.data.take().map(|d| Ok(Frame::data(d)))),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Inner { body } => body.is_end_stream(),
            Kind::Full { body } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Inner { body } => body.size_hint(),
            Kind::Full { body } => body.size_hint(),
        }
    }
}

/// Why buffering a body stopped.
#[derive(Debug)]
pub(crate) enum CollectError<E> {
    /// More bytes than the limit.
    TooLarge,
    /// The body itself failed (connection reset, ...).
    Body(E),
}

/// Accumulates a body's data frames up to a limit, without copying when the body is one frame.
#[derive(Debug)]
pub(crate) struct Collector {
    first: Option<Bytes>,
    rest: BytesMut,
    len: usize,
    limit: usize,
}

impl Collector {
    pub(crate) fn new(limit: usize) -> Self {
        Collector {
            first: None,
            rest: BytesMut::new(),
            len: 0,
            limit,
        }
    }

    /// Polls `body` until it ends, the limit is passed, or it fails.
    pub(crate) fn poll_collect<B>(
        &mut self,
        mut body: Pin<&mut B>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<Bytes, CollectError<B::Error>>>
    where
        B: Body,
    {
        loop {
            if body.is_end_stream() {
                return Poll::Ready(Ok(self.take()));
            }
            match ready!(body.as_mut().poll_frame(cx)) {
                None => return Poll::Ready(Ok(self.take())),
                Some(Err(e)) => return Poll::Ready(Err(CollectError::Body(e))),
                Some(Ok(frame)) => {
                    let Ok(mut data) = frame.into_data() else {
                        continue; // trailers carry nothing a token exchange uses
                    };
                    let n = data.remaining();
                    self.len = self.len.saturating_add(n);
                    if self.len > self.limit {
                        return Poll::Ready(Err(CollectError::TooLarge));
                    }
                    if n == 0 {
                        continue;
                    }
                    let bytes = data.copy_to_bytes(n);
                    match self.first.take() {
                        None if self.rest.is_empty() => self.first = Some(bytes),
                        None => self.rest.extend_from_slice(&bytes),
                        Some(first) => {
                            self.rest.reserve(first.len() + bytes.len());
                            self.rest.extend_from_slice(&first);
                            self.rest.extend_from_slice(&bytes);
                        }
                    }
                }
            }
        }
    }

    fn take(&mut self) -> Bytes {
        match self.first.take() {
            Some(first) => first,
            None => std::mem::take(&mut self.rest).freeze(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    struct Frames(Vec<Bytes>);

    impl Body for Frames {
        type Data = Bytes;
        type Error = Infallible;
        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            if self.0.is_empty() {
                Poll::Ready(None)
            } else {
                Poll::Ready(Some(Ok(Frame::data(self.0.remove(0)))))
            }
        }
    }

    async fn collect(frames: &[&'static str], limit: usize) -> Result<Bytes, ()> {
        let mut body = Frames(
            frames
                .iter()
                .map(|f| Bytes::from_static(f.as_bytes()))
                .collect(),
        );
        let mut collector = Collector::new(limit);
        poll_fn(|cx| collector.poll_collect(Pin::new(&mut body), cx))
            .await
            .map_err(|_| ())
    }

    #[tokio::test]
    async fn frames_are_joined_in_order() {
        assert_eq!(collect(&["ab", "", "cd", "e"], 10).await.unwrap(), "abcde");
        assert_eq!(collect(&["abc"], 3).await.unwrap(), "abc");
        assert_eq!(collect(&[], 3).await.unwrap(), "");
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_refused() {
        assert!(collect(&["ab", "cd"], 3).await.is_err());
    }
}

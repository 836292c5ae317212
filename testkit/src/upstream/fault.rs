//! Faults on the path to the upstream: error pages, redirects, hang-ups and bodies that break
//! off, drip, stall or never end.

use std::time::Duration;

use bytes::Bytes;
use http::Response;
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;

use super::{full, page, FakeBody, Seen};

/// A fault on the path to the upstream, played at the token endpoint after the request was read.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// An HTML error page with this status, as an outage page or a proxy answers; it echoes the
    /// request's code and client secret, as careless error pages do.
    Html(u16),
    /// The redirect a misconfigured proxy answers: this status, `Location` this URL.
    Redirect(u16, String),
    /// Closes the connection without an answer.
    HangUp,
    /// Sends the head of a 200 with `Content-Length: 500` and part of the body, then closes.
    BreakOff,
    /// Sends the head of a 200 with `Content-Length: 1000`, then the body one byte per 100 ms.
    Drip,
    /// Sends the head of a 200 and the first bytes of the body, then nothing for 30 s.
    StallMidBody,
    /// Streams a chunked JSON body that never ends.
    Endless,
}

/// Plays a fault: an answer, or an error that makes hyper close the connection.
pub(super) fn play(fault: &Fault, seen: &Seen) -> Result<Response<FakeBody>, std::io::Error> {
    let json_200 = |length: Option<usize>, body: FakeBody| {
        let mut response = Response::builder()
            .status(200)
            .header("content-type", "application/json");
        if let Some(length) = length {
            response = response.header("content-length", length);
        }
        Ok(response.body(body).unwrap())
    };
    match fault {
        Fault::Html(status) => {
            let code = seen.param("code").unwrap_or_default();
            let secret = seen.param("client_secret").unwrap_or_default();
            Ok(page(
                *status,
                &format!("Internal error for code {code} (client secret {secret})"),
            ))
        }
        Fault::Redirect(status, location) => Ok(Response::builder()
            .status(*status)
            .header("location", location)
            .body(full(String::new()))
            .unwrap()),
        Fault::HangUp => Err(std::io::Error::other("the fake upstream hangs up")),
        Fault::BreakOff => {
            // The pause lets hyper flush the head and the first bytes before the break.
            let broken = futures_util::stream::unfold(false, |sent| async move {
                if sent {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    return Some((Err(std::io::Error::other("the fake breaks off")), true));
                }
                let part = Bytes::from_static(b"{\"access_token\":\"abc");
                Some((Ok(Frame::data(part)), true))
            });
            json_200(Some(500), BodyExt::boxed(StreamBody::new(broken)))
        }
        Fault::Drip => {
            let drip = futures_util::stream::unfold(0, |sent| async move {
                if sent == 1000 {
                    return None;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
                Some((Ok(Frame::data(Bytes::from_static(b" "))), sent + 1))
            });
            json_200(Some(1000), BodyExt::boxed(StreamBody::new(drip)))
        }
        Fault::StallMidBody => {
            let stalled = futures_util::stream::unfold(false, |sent| async move {
                if sent {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return None;
                }
                let part = Bytes::from_static(b"{\"access_token\":");
                Some((Ok(Frame::data(part)), true))
            });
            json_200(None, BodyExt::boxed(StreamBody::new(stalled)))
        }
        Fault::Endless => {
            let chunk = Bytes::from("[".repeat(8192));
            let endless = futures_util::stream::repeat_with(move || Ok(Frame::data(chunk.clone())));
            json_200(None, BodyExt::boxed(StreamBody::new(endless)))
        }
    }
}

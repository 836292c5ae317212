//! The bridge as a bare hyper reverse proxy: the token exchange layers over the pooled
//! `Upstream` client, behind hyper-util's server, on `POST /token`. No axum, no router crate:
//! everything else is a 404 JSON answer.
//!
//! ```text
//! BRIDGE_UPSTREAM_TOKEN_URL=https://login.salesforce.com/services/oauth2/token \
//!     cargo run --example proxy
//! ```
//!
//! The `bridge` server (`server/`) is this plus what production needs: TLS, client limits,
//! graceful shutdown, `/authorize`, refresh records, logs, metrics and the doctor.

use std::convert::Infallible;
use std::time::Duration;

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{Provider, TokenExchangeLayer};
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::net::TcpListener;
use tower::{Layer, Service, ServiceExt};

/// One answer body type for the exchange's answers and the proxy's own 404.
type AnswerBody = UnsyncBoxBody<Bytes, Infallible>;

/// Serves `POST /token` on `listener`, exchanging through `upstream_token_url`, until the
/// process ends. Each connection is its own task; HTTP/1.1 and HTTP/2 (h2c) alike.
pub async fn serve(listener: TcpListener, upstream_token_url: &str) {
    let upstream = Upstream::new(upstream_token_url.parse().expect("an absolute URL"))
        // Under Alexa's 4.5 s: a slow upstream is answered 504 JSON in time, not dropped.
        .timeout(Duration::from_secs(4));
    let token = TokenExchangeLayer::new(Provider::salesforce()).layer(upstream);
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let token = token.clone();
        let service = hyper::service::service_fn(move |request: Request<Incoming>| {
            route(token.clone(), request)
        });
        tokio::spawn(async move {
            // A client that hangs up mid-request is its own business: nothing to report.
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// `POST /token` to the exchange; anything else a 404 JSON answer.
async fn route<S, B>(
    token: S,
    request: Request<Incoming>,
) -> Result<Response<AnswerBody>, Infallible>
where
    S: Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    B: http_body::Body<Data = Bytes, Error = Infallible> + Send + 'static,
{
    if request.method() == Method::POST && request.uri().path() == "/token" {
        // The exchange answers every request itself (RFC 6749 JSON errors included): its
        // error type is `Infallible`.
        let answer = token.oneshot(request).await?;
        return Ok(answer.map(|body| body.boxed_unsync()));
    }
    let not_found = Full::new(Bytes::from_static(br#"{"error":"not_found"}"#));
    Ok(Response::builder()
        .status(StatusCode::NOT_FOUND)
        .header(http::header::CONTENT_TYPE, "application/json")
        .body(not_found.boxed_unsync())
        .expect("a valid answer"))
}

#[tokio::main]
async fn main() {
    let upstream = std::env::var("BRIDGE_UPSTREAM_TOKEN_URL").unwrap_or_else(|_| {
        eprintln!("set BRIDGE_UPSTREAM_TOKEN_URL to the upstream token endpoint");
        std::process::exit(2);
    });
    let listen = std::env::var("BRIDGE_LISTEN").unwrap_or_else(|_| "127.0.0.1:8080".into());
    let listener = TcpListener::bind(&listen).await.expect("listen");
    println!("serving POST http://{listen}/token in front of {upstream}");
    serve(listener, &upstream).await;
}

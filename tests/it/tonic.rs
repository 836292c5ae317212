//! The layers inside a tonic server, on tonic's own body type: proof that they are
//! body-generic. The token exchange is a named service among tonic's routes, served over
//! loopback by `tonic::transport::Server`.

use testkit as support;

use std::convert::Infallible;
use std::task::{Context, Poll};

use account_link_bridge::upstream::Upstream;
use account_link_bridge::{exchange::TokenExchange, PackedToken, Provider, TokenExchangeLayer};
use support::{post, FakeUpstream};
use tower::{Layer, Service};

/// The token exchange as a tonic service: requests to `/oauth2/*` arrive with tonic's body.
#[derive(Clone)]
struct TokenService(TokenExchange<Upstream>);

impl tonic::server::NamedService for TokenService {
    const NAME: &'static str = "oauth2";
}

impl Service<http::Request<tonic::body::Body>> for TokenService {
    type Response =
        <TokenExchange<Upstream> as Service<http::Request<tonic::body::Body>>>::Response;
    type Error = Infallible;
    type Future = <TokenExchange<Upstream> as Service<http::Request<tonic::body::Body>>>::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Service::<http::Request<tonic::body::Body>>::poll_ready(&mut self.0, cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        self.0.call(request)
    }
}

#[tokio::test]
async fn a_tonic_server_answers_a_token_exchange_through_the_layers() {
    let upstream = FakeUpstream::salesforce().await;
    let token = TokenExchangeLayer::new(Provider::salesforce())
        .layer(Upstream::new(upstream.token_url().parse().unwrap()));
    let routes = tonic::service::Routes::new(TokenService(token));
    // Bound here and handed over, so the server listens before the first request is sent.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(
        tonic::transport::Server::builder()
            .accept_http1(true)
            .add_routes(routes)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener)),
    );

    let url = format!("http://{addr}/oauth2/token");
    let reply = post(
        &url,
        &[],
        r#"{"grant_type":"authorization_code","code":"tonic-code","client_id":"alexa","client_secret":"s"}"#,
    )
    .await;

    assert_eq!(reply.status, 200, "{:?}", reply.body);
    assert_eq!(reply.header("cache-control"), Some("no-store"));
    let answer = reply.json();
    assert_eq!(answer["expires_in"], 5400);
    let packed = PackedToken::unpack(answer["access_token"].as_str().unwrap()).unwrap();
    assert_eq!(packed.instance_url(), Some("https://na1.salesforce.com"));
    assert_eq!(upstream.last().param("code").as_deref(), Some("tonic-code"));
    assert_eq!(
        upstream.last().header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
}

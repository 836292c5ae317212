//! Helpers shared by the unit tests of the middleman's routes.

use http::header::LOCATION;
use http::{Request, Response, StatusCode};
use tower::ServiceExt;
use url::Url;

use super::{AuthorizeRedirect, AuthorizeRedirectBuilder};
use crate::body::FullBody;
use crate::state::StateSealer;

pub(super) const ALEXA: &str = "https://layla.amazon.com/api/skill/link/M3BVP74N95SP1F";

pub(super) fn service(
    configure: impl FnOnce(AuthorizeRedirectBuilder) -> AuthorizeRedirectBuilder,
) -> AuthorizeRedirect {
    configure(
        AuthorizeRedirect::builder()
            .upstream_authorize_url("https://login.example.com/oauth/authorize?prompt=login")
            .public_url("https://bridge.example.com")
            .sealer(StateSealer::random()),
    )
    .build()
    .unwrap()
}

pub(super) async fn get(
    service: &AuthorizeRedirect,
    pairs: &[(&str, &str)],
    path: &str,
) -> Response<FullBody> {
    let query = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    let request = Request::get(format!("{path}?{query}")).body(()).unwrap();
    service.clone().oneshot(request).await.unwrap()
}

pub(super) fn location(response: &Response<FullBody>) -> Url {
    assert_eq!(response.status(), StatusCode::FOUND);
    Url::parse(response.headers()[LOCATION].to_str().unwrap()).unwrap()
}

pub(super) fn query(url: &Url) -> Vec<(String, String)> {
    url.query_pairs().into_owned().collect()
}

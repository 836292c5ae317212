//! The usual stack in one layer: normalize the request, rewrite the answer.

use std::fmt;

use tower_layer::Layer;

use crate::token_request::{NormalizeTokenRequest, NormalizeTokenRequestLayer};
use crate::token_response::{RewriteTokenResponse, RewriteTokenResponseLayer};
use crate::Provider;

/// [`NormalizeTokenRequestLayer`] outside [`RewriteTokenResponseLayer`], both configured from
/// one [`Provider`]: the token endpoint of an Alexa bridge in one line.
///
/// ```
/// use account_link_bridge::{Provider, TokenExchangeLayer};
/// use tower::ServiceBuilder;
/// # let upstream = tower::service_fn(|_: http::Request<account_link_bridge::FullBody>| async {
/// #     Ok::<_, std::convert::Infallible>(http::Response::new(account_link_bridge::FullBody::default()))
/// # });
///
/// let token_endpoint = ServiceBuilder::new()
///     .layer(TokenExchangeLayer::new(Provider::salesforce()))
///     .service(upstream);
/// ```
#[derive(Clone)]
pub struct TokenExchangeLayer {
    provider: Provider,
    request: NormalizeTokenRequestLayer,
    response: RewriteTokenResponseLayer,
}

impl TokenExchangeLayer {
    /// Both layers, configured from `provider`.
    pub fn new(provider: Provider) -> Self {
        TokenExchangeLayer {
            request: NormalizeTokenRequestLayer::for_provider(&provider),
            response: RewriteTokenResponseLayer::for_provider(&provider),
            provider,
        }
    }

    /// The provider the layers were configured from.
    pub fn provider(&self) -> &Provider {
        &self.provider
    }
}

impl fmt::Debug for TokenExchangeLayer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenExchangeLayer")
            .field("provider", &self.provider)
            .finish()
    }
}

/// The service [`TokenExchangeLayer`] makes.
pub type TokenExchange<S> = NormalizeTokenRequest<RewriteTokenResponse<S>>;

impl<S> Layer<S> for TokenExchangeLayer {
    type Service = TokenExchange<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.request.layer(self.response.layer(inner))
    }
}

//! The usual stack in one layer: normalize the request, (keep refresh records,) rewrite the
//! answer.

use std::fmt;

use tower_layer::Layer;

use crate::refresh::{RecordRefresh, RecordRefreshLayer, RefreshRecords};
use crate::token_request::{NormalizeTokenRequest, NormalizeTokenRequestLayer};
use crate::token_response::{RewriteTokenResponse, RewriteTokenResponseLayer};
use crate::Provider;

/// [`NormalizeTokenRequestLayer`] outside [`RewriteTokenResponseLayer`], both configured from
/// one [`Provider`]: the token endpoint of an Alexa bridge in one line. With
/// [`TokenExchangeLayer::refresh_records`], a [`RecordRefreshLayer`] between them keeps refresh
/// records (see [`refresh`](crate::refresh)); without, requests pass it untouched.
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
    records: RecordRefreshLayer,
    response: RewriteTokenResponseLayer,
}

impl TokenExchangeLayer {
    /// Both layers, configured from `provider`.
    pub fn new(provider: Provider) -> Self {
        TokenExchangeLayer {
            request: NormalizeTokenRequestLayer::for_provider(&provider),
            records: RecordRefreshLayer::off(),
            response: RewriteTokenResponseLayer::for_provider(&provider),
            provider,
        }
    }

    /// Keeps refresh records between the two layers: a repeated refresh (or code exchange) gets
    /// the answer already given instead of a second upstream call, and an upstream call runs to
    /// completion after Alexa's deadline. See [`refresh`](crate::refresh).
    pub fn refresh_records(mut self, records: RefreshRecords) -> Self {
        self.records = RecordRefreshLayer::new(records);
        self
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
            .field("records", &self.records)
            .finish()
    }
}

/// The service [`TokenExchangeLayer`] makes.
pub type TokenExchange<S> = NormalizeTokenRequest<RecordRefresh<RewriteTokenResponse<S>>>;

impl<S> Layer<S> for TokenExchangeLayer {
    type Service = TokenExchange<S>;

    fn layer(&self, inner: S) -> Self::Service {
        self.request
            .layer(self.records.layer(self.response.layer(inner)))
    }
}

// A real authorization server, oidc-provider (https://github.com/panva/node-oidc-provider), on
// loopback for tests/oidc_provider.rs. Nothing here is ours but the configuration.
//
//   PORT=<port> CALLBACK=<bridge public URL>/callback CLIENT_SECRET=<secret> node server.mjs
//
// ROTATE_REFRESH_TOKENS=1 makes every refresh rotate the refresh token; reusing a rotated one
// is then refused and revokes the grant (tests/refresh.rs).
import Provider from 'oidc-provider';

const port = Number(process.env.PORT);
const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'alexa-bridge',
    client_secret: process.env.CLIENT_SECRET,
    redirect_uris: [process.env.CALLBACK],
    grant_types: ['authorization_code', 'refresh_token'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_post',
  }],
  // The login and consent pages oidc-provider ships for development: a form to post.
  features: { devInteractions: { enabled: true } },
  pkce: { required: () => true },
  ...(process.env.ROTATE_REFRESH_TOKENS === '1' ? { rotateRefreshToken: true } : {}),
  // Issue refresh tokens to clients allowed the grant, as Alexa needs one.
  issueRefreshToken: async (ctx, client) => client.grantTypeAllowed('refresh_token'),
  async findAccount(ctx, id) {
    return { accountId: id, async claims() { return { sub: id }; } };
  },
});
provider.proxy = false;
const server = provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

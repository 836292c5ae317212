// A real authorization server, oidc-provider (https://github.com/panva/node-oidc-provider), on
// loopback for tests/oidc_provider.rs. Nothing here is ours but the configuration.
//
//   CALLBACK=<bridge public URL>/callback CLIENT_SECRET=<secret> node server.mjs
//
// It listens on a loopback port the system chooses and prints `oidc-provider listening on
// <port>` once the issuer (which names the port) is configured: a port chosen by the test and
// released first could be taken by another test in between.
//
// ROTATE_REFRESH_TOKENS=1 makes every refresh rotate the refresh token; reusing a rotated one
// is then refused and revokes the grant (tests/refresh.rs).
import http from 'node:http';
import Provider from 'oidc-provider';

function provider(issuer) {
  const provider = new Provider(issuer, {
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
  return provider;
}

// Nothing is answered before the provider exists: the port is printed only then.
let handle = (req, res) => { res.statusCode = 503; res.end(); };
const server = http.createServer((req, res) => handle(req, res));
server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  handle = provider(`http://127.0.0.1:${port}`).callback();
  console.log(`oidc-provider listening on ${port}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));

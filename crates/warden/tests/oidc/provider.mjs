// A real OpenID provider (oidc-provider) for Warden's single sign-on tests, on 127.0.0.1.
// Usage: node provider.mjs PORT CLIENT_ID CLIENT_SECRET REDIRECT_URI
// Its development login form takes any login: the login is the account, written
// `email` or `email!unverified` (then email_verified is false). Prints READY when listening.
import { Provider } from 'oidc-provider';

const [port, clientId, clientSecret, redirectUri] = process.argv.slice(2);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: clientId,
    client_secret: clientSecret,
    redirect_uris: [redirectUri],
    response_types: ['code'],
    grant_types: ['authorization_code'],
  }],
  pkce: { required: () => true },
  claims: { openid: ['sub'], email: ['email', 'email_verified'], profile: ['name'] },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => {
      const [email, flag] = id.split('!');
      return { sub: `sub-${id}`, email, email_verified: flag !== 'unverified', name: email };
    },
  }),
  features: { devInteractions: { enabled: true } },
  cookies: { keys: ['warden-test-cookie-key'] },
  ttl: { AuthorizationCode: 60, IdToken: 3600, AccessToken: 3600, Session: 3600, Grant: 3600, Interaction: 600 },
});
provider.listen(Number(port), '127.0.0.1', () => process.stdout.write('READY\n'));

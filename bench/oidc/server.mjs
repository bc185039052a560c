// oidc-provider configured with refresh-token rotation, for Warden's identity benchmark.
// Mints N refresh tokens and one access token programmatically (as an authorization-code
// sign-in would), prints them as JSON on stdout, then serves on 127.0.0.1:PORT.
import { Provider } from 'oidc-provider';

const port = Number(process.argv[2] ?? 18090);
const count = Number(process.argv[3] ?? 32);

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [{
    client_id: 'bench',
    client_secret: 'bench-secret-not-a-real-secret',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: ['http://127.0.0.1/cb'],
    response_types: ['code'],
  }],
  rotateRefreshToken: true,
  ttl: { AccessToken: 900, Grant: 30 * 86400, RefreshToken: 30 * 86400, Session: 86400 },
  findAccount: async (ctx, id) => ({
    accountId: id,
    claims: async () => ({ sub: id, email: 'bench@example.com' }),
  }),
  features: { devInteractions: { enabled: false } },
});

const client = await provider.Client.find('bench');
// One grant per client, as after `count` separate sign-ins: reuse detection in
// oidc-provider revokes a whole grant.
async function newGrant() {
  const grant = new provider.Grant({ accountId: 'user-1', clientId: 'bench' });
  grant.addOIDCScope('openid offline_access');
  return grant.save();
}
const refresh = [];
for (let i = 0; i < count; i++) {
  const grantId = await newGrant();
  const rt = new provider.RefreshToken({
    accountId: 'user-1', client, grantId, scope: 'openid offline_access',
    gty: 'authorization_code', authTime: Math.floor(Date.now() / 1000),
  });
  refresh.push(await rt.save());
}
const grantId = await newGrant();
const at = new provider.AccessToken({ accountId: 'user-1', client, grantId, scope: 'openid' });
const access = await at.save();
provider.listen(port, '127.0.0.1', () => {
  process.stdout.write('TOKENS ' + JSON.stringify({ refresh, access }) + '\n');
});

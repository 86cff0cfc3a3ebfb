import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { followRedirects, startGithubFake, startOpenIdProvider, type FakeProvider } from './support/fake-providers.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let google: FakeProvider;
let github: FakeProvider;
let acmeAdmin: string;
let widgetsAdmin: string;

async function adminTokenOf(tenant: string, credentials: { adminEmail: string; adminPassword: string }) {
  const signedIn = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  return signedIn.body.accessToken as string;
}

const providersUrl = (tenant: string) => `${server.baseUrl}/identity/api/${tenant}/settings/oauth-providers`;
const callbackOf = (tenant: string, provider: string) => `${server.baseUrl}/identity/api/${tenant}/auth/callback/${provider}`;

beforeAll(async () => {
  // The test client is its own trusted proxy, so it can send X-Forwarded-For like one.
  server = await startServer({ env: { TANSU_TRUSTED_PROXIES: '127.0.0.1' } });
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  acmeAdmin = await adminTokenOf('acme', await provisionTenant(server.baseUrl, platformToken, 'acme'));
  widgetsAdmin = await adminTokenOf('widgets', await provisionTenant(server.baseUrl, platformToken, 'widgets'));
  google = await startOpenIdProvider({
    clientId: 'acme-google-client',
    clientSecret: 'acme-google-secret-value',
    redirectUris: [callbackOf('acme', 'google')],
  });
  github = await startGithubFake({ clientId: 'acme-github-client', clientSecret: 'acme-github-secret-value' });

  const configured = await rest('POST', providersUrl('acme'), {
    token: acmeAdmin,
    body: { providerId: 'google', clientId: 'acme-google-client', clientSecret: 'acme-google-secret-value', issuer: google.baseUrl },
  });
  expect(configured.status).toBe(200);
  const githubConfigured = await rest('POST', providersUrl('acme'), {
    token: acmeAdmin,
    body: {
      providerId: 'github',
      clientId: 'acme-github-client',
      clientSecret: 'acme-github-secret-value',
      webBaseUrl: github.baseUrl,
      apiBaseUrl: github.baseUrl,
    },
  });
  expect(githubConfigured.status).toBe(200);
});

afterAll(async () => {
  await google?.close();
  await github?.close();
  await server?.stop();
});

async function signInWith(tenant: string, provider: string) {
  const response = await followRedirects(`${server.baseUrl}/identity/api/${tenant}/auth/authorize/${provider}`);
  return { status: response.status, body: await response.json() };
}

describe('provider settings', () => {
  test('create returns the callback URL and a masked secret only', async () => {
    const listed = await rest('GET', providersUrl('acme'), { token: acmeAdmin });
    expect(listed.status).toBe(200);
    const entry = listed.body.providers.find((provider: { providerId: string }) => provider.providerId === 'google');
    expect(entry.callbackUrl).toBe(callbackOf('acme', 'google'));
    expect(entry.clientSecretMasked).toMatch(/^\*+alue$/);
    expect(JSON.stringify(listed.body)).not.toContain('acme-google-secret-value');
  });

  test('a second configuration of one provider is ALREADY_EXISTS', async () => {
    const again = await rest('POST', providersUrl('acme'), {
      token: acmeAdmin,
      body: { providerId: 'google', clientId: 'x', clientSecret: 'y' },
    });
    expect(again.status).toBe(409);
  });

  test('the test call reports active for good credentials and the error for bad ones', async () => {
    const good = await rest('POST', `${providersUrl('acme')}/google/test`, { token: acmeAdmin, body: {} });
    expect(good.status).toBe(200);
    expect(good.body).toMatchObject({ active: true, status: 'active' });

    const githubGood = await rest('POST', `${providersUrl('acme')}/github/test`, { token: acmeAdmin, body: {} });
    expect(githubGood.body.active).toBe(true);

    await rest('POST', providersUrl('widgets'), {
      token: widgetsAdmin,
      body: { providerId: 'google', clientId: 'acme-google-client', clientSecret: 'wrong-secret', issuer: google.baseUrl },
    });
    const bad = await rest('POST', `${providersUrl('widgets')}/google/test`, { token: widgetsAdmin, body: {} });
    expect(bad.body.active ?? false).toBe(false);
    expect(bad.body.status).toMatch(/^error: invalid_client/);
  });

  test('one tenant configuration leaves the other untouched', async () => {
    const acme = await rest('GET', providersUrl('acme'), { token: acmeAdmin });
    const acmeGoogle = acme.body.providers.find((provider: { providerId: string }) => provider.providerId === 'google');
    expect(acmeGoogle.status).toBe('active');
    const widgetsGithub = await followRedirects(`${server.baseUrl}/identity/api/widgets/auth/authorize/github`);
    expect(widgetsGithub.status).toBe(404);
  });

  test('an acme admin gets PERMISSION_DENIED for widgets providers', async () => {
    const denied = await rest('DELETE', `${providersUrl('widgets')}/microsoft`, { token: acmeAdmin });
    expect(denied.status).toBe(403);
  });
});

describe('sign-in with an OpenID provider', () => {
  test('first sign-in creates the user; the next finds the same user', async () => {
    google.signInAs({ id: 'g-1001', email: 'New.Person@Example.com', emailVerified: true, name: 'New Person' });
    const first = await signInWith('acme', 'google');
    expect(first.status).toBe(200);
    expect(first.body.user).toMatchObject({ email: 'new.person@example.com', emailVerified: true });
    const me = await rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token: first.body.accessToken });
    expect(me.status).toBe(200);

    const second = await signInWith('acme', 'google');
    expect(second.body.user.id).toBe(first.body.user.id);
  });

  test('a verified email links to the existing user', async () => {
    const existing = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'linked@acme.test', password: 'a perfectly fine passphrase' },
    });
    google.signInAs({ id: 'g-2002', email: 'linked@acme.test', emailVerified: true, name: 'Linked' });
    const signedIn = await signInWith('acme', 'google');
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user.id).toBe(existing.body.user.id);
  });

  test('an unverified email does not link to the existing user', async () => {
    await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'careful@acme.test', password: 'a perfectly fine passphrase' },
    });
    google.signInAs({ id: 'g-3003', email: 'careful@acme.test', emailVerified: false, name: 'Impostor' });
    const rejected = await signInWith('acme', 'google');
    expect(rejected.status).toBe(409);
    expect(rejected.body.error).toBe('email_not_verified');
  });

  test('callback records the forwarded client IP', async () => {
    google.signInAs({ id: 'g-4004', email: 'forwarded@acme.test', emailVerified: true, name: 'Forwarded' });
    const response = await followRedirects(`${server.baseUrl}/identity/api/acme/auth/authorize/google`, {
      'x-forwarded-for': '203.0.113.9',
    });
    expect(response.status).toBe(200);
    const { user } = await response.json();
    const read = await rest('GET', `${server.baseUrl}/identity/api/acme/users/${user.id}`, { token: acmeAdmin });
    expect(read.body.user.lastSignInIp).toBe('203.0.113.9');
    const activity = await rest('GET', `${server.baseUrl}/identity/api/acme/login-activity?userId=${user.id}`, { token: acmeAdmin });
    expect(activity.body.entries[0].ip).toBe('203.0.113.9');
  });

  test('an unknown state is rejected', async () => {
    google.signInAs({ id: 'g-1001', email: 'new.person@example.com', emailVerified: true, name: 'New Person' });
    const start = await fetch(`${server.baseUrl}/identity/api/acme/auth/authorize/google`, { redirect: 'manual' });
    const providerUrl = new URL(start.headers.get('location')!);
    expect(providerUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(providerUrl.searchParams.get('state')).toBeTruthy();
    const forged = await fetch(`${callbackOf('acme', 'google')}?code=x&state=${providerUrl.searchParams.get('state')}x`);
    expect(forged.status).toBe(400);
  });
});

describe('sign-in with GitHub', () => {
  test('a verified primary email creates the user', async () => {
    github.signInAs({ id: '424242', email: 'octo@acme.test', emailVerified: true, name: 'Octo' });
    const signedIn = await signInWith('acme', 'github');
    expect(signedIn.status).toBe(200);
    expect(signedIn.body.user).toMatchObject({ email: 'octo@acme.test', displayName: 'Octo' });
  });
});

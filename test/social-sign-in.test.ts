import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import {
  followRedirects,
  startGithubFake,
  startMicrosoftStandIn,
  startOpenIdProvider,
  type FakeProvider,
  type MicrosoftStandIn,
} from './support/fake-providers.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let google: FakeProvider;
let github: FakeProvider;
let microsoft: MicrosoftStandIn;
let acmeAdmin: string;
let widgetsAdmin: string;

async function adminTokenOf(tenant: string, credentials: { adminEmail: string; adminPassword: string }) {
  const signedIn = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  return signedIn.body.accessToken as string;
}

// Directory (tenant) ids of the Microsoft stand-in.
const CONTOSO = '8eaef023-2b34-4da1-9baa-8bc8c9d6a490';
const FABRIKAM = '82229342-1101-4ab6-817b-70c0747630f3';

const providersUrl = (tenant: string) => `${server.baseUrl}/identity/api/${tenant}/settings/oauth-providers`;
const callbackOf = (tenant: string, provider: string) => `${server.baseUrl}/identity/api/${tenant}/auth/callback/${provider}`;

beforeAll(async () => {
  // The test client is its own trusted proxy, so it can send X-Forwarded-For like one. The
  // stand-in providers listen on 127.0.0.1, which only TANSU_ALLOW_PRIVATE_PROVIDER_URLS permits.
  server = await startServer({ env: { TANSU_TRUSTED_PROXIES: '127.0.0.1', TANSU_ALLOW_PRIVATE_PROVIDER_URLS: 'true' } });
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  acmeAdmin = await adminTokenOf('acme', await provisionTenant(server.baseUrl, platformToken, 'acme'));
  widgetsAdmin = await adminTokenOf('widgets', await provisionTenant(server.baseUrl, platformToken, 'widgets'));
  google = await startOpenIdProvider({
    clientId: 'acme-google-client',
    clientSecret: 'acme-google-secret-value',
    redirectUris: [callbackOf('acme', 'google')],
  });
  github = await startGithubFake({ clientId: 'acme-github-client', clientSecret: 'acme-github-secret-value' });
  microsoft = await startMicrosoftStandIn(
    {
      clientId: 'tansu-microsoft-client',
      clientSecret: 'tansu-microsoft-secret-value',
      redirectUris: [callbackOf('acme', 'microsoft'), callbackOf('widgets', 'microsoft')],
    },
    [CONTOSO, FABRIKAM],
  );

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

  // acme takes accounts of any directory, widgets only those of Contoso.
  for (const [tenant, token, issuer] of [
    ['acme', acmeAdmin, microsoft.commonIssuer],
    ['widgets', widgetsAdmin, microsoft.issuerOf(CONTOSO)],
  ]) {
    const microsoftConfigured = await rest('POST', providersUrl(tenant), {
      token,
      body: { providerId: 'microsoft', clientId: 'tansu-microsoft-client', clientSecret: 'tansu-microsoft-secret-value', issuer },
    });
    expect(microsoftConfigured.status).toBe(200);
  }
});

afterAll(async () => {
  await google?.close();
  await github?.close();
  await microsoft?.close();
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

describe('sign-in with Microsoft', () => {
  test('test call reports active for common and directory issuers', async () => {
    const common = await rest('POST', `${providersUrl('acme')}/microsoft/test`, { token: acmeAdmin, body: {} });
    expect(common.body).toMatchObject({ active: true, status: 'active' });
    const directory = await rest('POST', `${providersUrl('widgets')}/microsoft/test`, { token: widgetsAdmin, body: {} });
    expect(directory.body).toMatchObject({ active: true, status: 'active' });
  });

  test('authorize redirect carries state, PKCE and nonce', async () => {
    microsoft.signInAs({ tenant: CONTOSO, id: 'ms-redirect', email: 'redirect@contoso.test', emailVerified: true, name: 'R' });
    const start = await fetch(`${server.baseUrl}/identity/api/acme/auth/authorize/microsoft`, { redirect: 'manual' });
    expect(start.status).toBe(302);
    const providerUrl = new URL(start.headers.get('location')!);
    expect(providerUrl.href.startsWith(`${microsoft.issuerOf(CONTOSO)}/`)).toBe(true);
    expect(providerUrl.searchParams.get('client_id')).toBe('tansu-microsoft-client');
    expect(providerUrl.searchParams.get('redirect_uri')).toBe(callbackOf('acme', 'microsoft'));
    expect(providerUrl.searchParams.get('code_challenge_method')).toBe('S256');
    expect(providerUrl.searchParams.get('code_challenge')).toMatch(/^[\w-]{43}$/);
    expect(providerUrl.searchParams.get('state')).toBeTruthy();
    expect(providerUrl.searchParams.get('nonce')).toBeTruthy();
  });

  test('common issuer: first sign-in creates, next finds', async () => {
    microsoft.signInAs({ tenant: CONTOSO, id: 'ms-1001', email: 'Ada@Contoso.test', emailVerified: true, name: 'Ada' });
    const first = await signInWith('acme', 'microsoft');
    expect(first.status).toBe(200);
    expect(first.body.user).toMatchObject({ email: 'ada@contoso.test', emailVerified: true, displayName: 'Ada' });
    const me = await rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token: first.body.accessToken });
    expect(me.status).toBe(200);

    const second = await signInWith('acme', 'microsoft');
    expect(second.status).toBe(200);
    expect(second.body.user.id).toBe(first.body.user.id);
  });

  test('common issuer keys accounts by directory and sub', async () => {
    microsoft.signInAs({ tenant: CONTOSO, id: 'ms-shared-sub', email: 'one@contoso.test', emailVerified: true, name: 'One' });
    const contoso = await signInWith('acme', 'microsoft');
    expect(contoso.status).toBe(200);
    microsoft.signInAs({ tenant: FABRIKAM, id: 'ms-shared-sub', email: 'two@fabrikam.test', emailVerified: true, name: 'Two' });
    const fabrikam = await signInWith('acme', 'microsoft');
    expect(fabrikam.status).toBe(200);
    expect(fabrikam.body.user.email).toBe('two@fabrikam.test');
    expect(fabrikam.body.user.id).not.toBe(contoso.body.user.id);
  });

  test('email without xms_edov does not link', async () => {
    await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'grace@contoso.test', password: 'a perfectly fine passphrase' },
    });
    microsoft.signInAs({ tenant: FABRIKAM, id: 'ms-2002', email: 'grace@contoso.test', emailVerified: false, name: 'Not Grace' });
    const rejected = await signInWith('acme', 'microsoft');
    expect(rejected.status).toBe(409);
    expect(rejected.body.error).toBe('email_not_verified');
  });

  test('email without xms_edov creates an unverified user', async () => {
    microsoft.signInAs({ tenant: FABRIKAM, id: 'ms-2003', email: 'fresh@fabrikam.test', emailVerified: false, name: 'Fresh' });
    const created = await signInWith('acme', 'microsoft');
    expect(created.status).toBe(200);
    expect(created.body.user).toMatchObject({ email: 'fresh@fabrikam.test', emailVerified: false });
  });

  test('xms_edov links to the existing user', async () => {
    const existing = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'linus@contoso.test', password: 'a perfectly fine passphrase' },
    });
    microsoft.signInAs({ tenant: CONTOSO, id: 'ms-3003', email: 'linus@contoso.test', emailVerified: true, name: 'Linus' });
    const linked = await signInWith('acme', 'microsoft');
    expect(linked.status).toBe(200);
    expect(linked.body.user.id).toBe(existing.body.user.id);
  });

  test('directory issuer signs in its accounts', async () => {
    microsoft.signInAs({ tenant: CONTOSO, id: 'ms-4004', email: 'dir@contoso.test', emailVerified: true, name: 'Dir' });
    const first = await signInWith('widgets', 'microsoft');
    expect(first.status).toBe(200);
    expect(first.body.user.email).toBe('dir@contoso.test');
    const second = await signInWith('widgets', 'microsoft');
    expect(second.body.user.id).toBe(first.body.user.id);
  });
});

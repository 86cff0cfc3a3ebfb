import * as oidc from 'openid-client';
import pg from 'pg';

import { tenantDatabaseName } from '../services/platform/tenant-id.ts';
import { urlForDatabase } from './support/database.ts';

import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { signInThroughForm } from './support/oauth-browser.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let acmeAdmin: string;
let widgetsAdmin: string;
const userEmail = 'dana@acme.test';
const userPassword = 'a perfectly fine passphrase';
const redirectUri = 'com.acme.app:/cb';

async function adminTokenOf(tenant: string, credentials: { adminEmail: string; adminPassword: string }) {
  const signedIn = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  if (signedIn.status !== 200) throw new Error(`admin sign-in failed: ${JSON.stringify(signedIn.body)}`);
  return signedIn.body.accessToken as string;
}

beforeAll(async () => {
  server = await startServer();
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  acmeAdmin = await adminTokenOf('acme', await provisionTenant(server.baseUrl, platformToken, 'acme'));
  widgetsAdmin = await adminTokenOf('widgets', await provisionTenant(server.baseUrl, platformToken, 'widgets'));
  const signedUp = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
    body: { email: userEmail, password: userPassword, displayName: 'Dana' },
  });
  expect(signedUp.status).toBe(200);
});

afterAll(async () => {
  await server?.stop();
});

const issuerOf = (tenant: string) => new URL(`${server.baseUrl}/identity/${tenant}`);
const insecure = { execute: [oidc.allowInsecureRequests] };

function createClient(tenant: string, token: string, body: Record<string, unknown>) {
  return rest('POST', `${server.baseUrl}/identity/api/${tenant}/clients`, { token, body });
}

async function publicApp() {
  const created = await createClient('acme', acmeAdmin, { name: 'acme-mobile-app', type: 'public', redirectUris: [redirectUri] });
  expect(created.status).toBe(200);
  const config = await oidc.discovery(issuerOf('acme'), created.body.clientId, undefined, oidc.None(), insecure);
  return { clientId: created.body.clientId as string, config };
}

async function confidentialApp(scopes?: string[]) {
  const created = await createClient('acme', acmeAdmin, {
    name: 'acme-backend',
    type: 'confidential',
    redirectUris: ['http://127.0.0.1/callback'],
    ...(scopes ? { allowedScopes: scopes } : {}),
  });
  expect(created.status).toBe(200);
  const config = await oidc.discovery(issuerOf('acme'), created.body.clientId, created.body.clientSecret, undefined, insecure);
  return { clientId: created.body.clientId as string, secret: created.body.clientSecret as string, config };
}

/** Runs the code + PKCE flow of `config` as the test user and returns the tokens. */
async function codeFlow(config: oidc.Configuration, scope = 'openid profile email offline_access', redirect = redirectUri) {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirect,
    scope,
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    state,
    nonce,
  });
  const answer = await signInThroughForm(url, { email: userEmail, password: userPassword });
  expect(answer.status).toBe(303);
  return oidc.authorizationCodeGrant(config, new URL(answer.location!), {
    pkceCodeVerifier: verifier,
    expectedState: state,
    expectedNonce: nonce,
  });
}

describe('clients service', () => {
  test('a public app is registered without a secret and read back', async () => {
    const created = await createClient('acme', acmeAdmin, { name: 'acme-mobile-app', type: 'public', redirectUris: [redirectUri] });
    expect(created.status).toBe(200);
    expect(created.body.clientId).toMatch(/^[A-Za-z0-9_-]{22}$/);
    expect(created.body.clientSecret ?? '').toBe('');

    const read = await rest('GET', `${server.baseUrl}/identity/api/acme/clients/${created.body.clientId}`, { token: acmeAdmin });
    expect(read.status).toBe(200);
    expect(read.body.client).toMatchObject({ name: 'acme-mobile-app', type: 'public', redirectUris: [redirectUri], enabled: true });
    expect(JSON.stringify(read.body)).not.toMatch(/secret/i);
  });

  test('a confidential app gets a secret once; it is never returned again', async () => {
    const { clientId, secret } = await confidentialApp();
    expect(secret).toMatch(/^[A-Za-z0-9_-]{43}$/);
    const listed = await rest('GET', `${server.baseUrl}/identity/api/acme/clients?pageSize=100`, { token: acmeAdmin });
    expect(listed.status).toBe(200);
    expect(listed.body.clients.map((client: { clientId: string }) => client.clientId)).toContain(clientId);
    expect(JSON.stringify(listed.body)).not.toContain(secret);
  });

  test('bad registrations are INVALID_ARGUMENT naming the field', async () => {
    const noType = await createClient('acme', acmeAdmin, { name: 'x', type: 'spa', redirectUris: [redirectUri] });
    expect(noType.status).toBe(400);
    expect(noType.body.details[0].metadata.field).toBe('type');
    const fragment = await createClient('acme', acmeAdmin, { name: 'x', type: 'public', redirectUris: ['https://a.test/cb#x'] });
    expect(fragment.status).toBe(400);
    expect(fragment.body.details[0].metadata.field).toBe('redirect_uris');
    const noRedirect = await createClient('acme', acmeAdmin, { name: 'x', type: 'public' });
    expect(noRedirect.status).toBe(400);
  });

  test('malformed and dangerous redirect URIs are INVALID_ARGUMENT naming redirect_uris', async () => {
    for (const uri of [
      'https:///cb',
      'https:/app.test/cb',
      'file:///etc/passwd',
      'https://user:pw@app.test/cb',
      'https://user@app.test/cb',
      'javascript:alert(1)',
      'data:text/html,hi',
      'vbscript:msgbox(1)',
    ]) {
      const created = await createClient('acme', acmeAdmin, { name: 'x', type: 'public', redirectUris: [uri] });
      expect([uri, created.status]).toEqual([uri, 400]);
      expect(created.body.details[0].metadata.field).toBe('redirect_uris');
    }
  });

  test('private-use schemes of native apps and https with a host are accepted', async () => {
    for (const uri of ['com.acme.app:/cb', 'https://app.test/cb', 'http://127.0.0.1:8123/cb']) {
      const created = await createClient('acme', acmeAdmin, { name: 'ok', type: 'public', redirectUris: [uri] });
      expect([uri, created.status]).toEqual([uri, 200]);
    }
  });

  test('list pages through every app exactly once', async () => {
    for (let index = 0; index < 3; index++) await createClient('acme', acmeAdmin, { name: `paged-${index}`, type: 'confidential' });
    const seen: string[] = [];
    let pageToken = '';
    for (let page = 0; page < 50; page++) {
      const listed = await rest('GET', `${server.baseUrl}/identity/api/acme/clients?pageSize=2&pageToken=${pageToken}`, { token: acmeAdmin });
      expect(listed.status).toBe(200);
      expect(listed.body.clients.length).toBeLessThanOrEqual(2);
      seen.push(...listed.body.clients.map((client: { clientId: string }) => client.clientId));
      pageToken = listed.body.nextPageToken ?? '';
      if (!pageToken) break;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBeGreaterThanOrEqual(3);
  });

  test('delete removes the app; a second delete is NOT_FOUND', async () => {
    const { clientId } = await confidentialApp();
    const url = `${server.baseUrl}/identity/api/acme/clients/${clientId}`;
    expect((await rest('DELETE', url, { token: acmeAdmin })).status).toBe(200);
    expect((await rest('GET', url, { token: acmeAdmin })).status).toBe(404);
    expect((await rest('DELETE', url, { token: acmeAdmin })).status).toBe(404);
  });

  test('admin actions on apps are in the audit log without secrets', async () => {
    const { clientId, secret } = await confidentialApp();
    const { rows } = await queryTenant('acme', "SELECT actor, action, details FROM audit_log WHERE target = $1", [clientId]);
    expect(rows).toHaveLength(1);
    expect(rows[0].action).toBe('client.create');
    expect(JSON.stringify(rows[0].details)).not.toContain(secret);
  });
});

describe('permissions', () => {
  test('a regular user gets PERMISSION_DENIED', async () => {
    const signedIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: userEmail, password: userPassword },
    });
    const listed = await rest('GET', `${server.baseUrl}/identity/api/acme/clients`, { token: signedIn.body.accessToken });
    expect(listed.status).toBe(403);
    expect(listed.body.details[0].reason).toBe('PERMISSION_DENIED');
  });

  test('an acme admin gets PERMISSION_DENIED for widgets, even for a client that does not exist', async () => {
    const missing = await rest('GET', `${server.baseUrl}/identity/api/widgets/clients/no-such-client`, { token: acmeAdmin });
    expect(missing.status).toBe(403);
    const created = await createClient('widgets', acmeAdmin, { name: 'x', type: 'confidential' });
    expect(created.status).toBe(403);
  });

  test('no token is UNAUTHENTICATED', async () => {
    expect((await rest('GET', `${server.baseUrl}/identity/api/acme/clients`)).status).toBe(401);
  });
});

describe('OAuth endpoints with openid-client', () => {
  test('a public app runs the code + PKCE flow; the access token works on Tansu APIs', async () => {
    const { clientId, config } = await publicApp();
    const tokens = await codeFlow(config);
    expect(tokens.token_type).toBe('bearer');
    expect(tokens.refresh_token).toBeTruthy();
    const idClaims = tokens.claims()!;
    expect(idClaims.aud).toBe(clientId);
    expect(idClaims.email).toBe(userEmail);

    const me = await rest('GET', `${server.baseUrl}/identity/api/acme/auth/me`, { token: tokens.access_token });
    expect(me.status).toBe(200);
    expect(me.body.user.id).toBe(idClaims.sub);

    const info = await oidc.fetchUserInfo(config, tokens.access_token, idClaims.sub);
    expect(info).toMatchObject({ sub: idClaims.sub, email: userEmail, name: 'Dana' });

    const refreshed = await oidc.refreshTokenGrant(config, tokens.refresh_token!);
    expect(refreshed.access_token).not.toBe(tokens.access_token);
    expect(refreshed.refresh_token).not.toBe(tokens.refresh_token);
  });

  test('a public app without PKCE is sent back with invalid_request', async () => {
    const { config } = await publicApp();
    const url = oidc.buildAuthorizationUrl(config, { redirect_uri: redirectUri, scope: 'openid', state: 's1' });
    const answer = await fetch(url, { redirect: 'manual' });
    expect(answer.status).toBe(303);
    const location = new URL(answer.headers.get('location')!);
    expect(location.searchParams.get('error')).toBe('invalid_request');
    expect(location.searchParams.get('state')).toBe('s1');
  });

  test('plain PKCE and unregistered redirect URIs are refused', async () => {
    const { config } = await publicApp();
    const plain = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: 'a'.repeat(43),
      code_challenge_method: 'plain',
    });
    const plainAnswer = await fetch(plain, { redirect: 'manual' });
    expect(new URL(plainAnswer.headers.get('location')!).searchParams.get('error')).toBe('invalid_request');

    const other = oidc.buildAuthorizationUrl(config, { redirect_uri: 'com.acme.app:/cb/', scope: 'openid' });
    const otherAnswer = await fetch(other, { redirect: 'manual' });
    expect(otherAnswer.status).toBe(400);
    expect(otherAnswer.headers.get('location')).toBeNull();
  });

  test('a wrong password shows the form again and issues no code', async () => {
    const { config } = await publicApp();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const answer = await signInThroughForm(url, { email: userEmail, password: 'not the password' });
    expect(answer.status).toBe(401);
    expect(answer.location).toBeUndefined();
    expect(answer.html).toContain('the email or password is incorrect');
  });

  test('a code is exchanged once; the second exchange fails and ends the first session', async () => {
    const { config } = await publicApp();
    const verifier = oidc.randomPKCECodeVerifier();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid offline_access',
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
      code_challenge_method: 'S256',
    });
    const answer = await signInThroughForm(url, { email: userEmail, password: userPassword });
    const first = await oidc.authorizationCodeGrant(config, new URL(answer.location!), { pkceCodeVerifier: verifier });
    await expect(oidc.authorizationCodeGrant(config, new URL(answer.location!), { pkceCodeVerifier: verifier })).rejects.toMatchObject({
      error: 'invalid_grant',
    });
    await expect(oidc.refreshTokenGrant(config, first.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a wrong code_verifier is invalid_grant', async () => {
    const { config } = await publicApp();
    const url = oidc.buildAuthorizationUrl(config, {
      redirect_uri: redirectUri,
      scope: 'openid',
      code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()),
      code_challenge_method: 'S256',
    });
    const answer = await signInThroughForm(url, { email: userEmail, password: userPassword });
    await expect(
      oidc.authorizationCodeGrant(config, new URL(answer.location!), { pkceCodeVerifier: oidc.randomPKCECodeVerifier() }),
    ).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a confidential app gets a client_credentials token, introspects and revokes it', async () => {
    const { clientId, config } = await confidentialApp(['openid', 'functions.execute']);
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'functions.execute' });
    expect(tokens.scope).toBe('functions.execute');

    const introspected = await oidc.tokenIntrospection(config, tokens.access_token);
    expect(introspected).toMatchObject({ active: true, client_id: clientId, sub: clientId, scope: 'functions.execute', tid: 'acme' });

    await oidc.tokenRevocation(config, tokens.access_token);
    expect((await oidc.tokenIntrospection(config, tokens.access_token)).active).toBe(false);
  });

  test('a wrong client secret is invalid_client', async () => {
    const { clientId } = await confidentialApp();
    const config = await oidc.discovery(issuerOf('acme'), clientId, 'not-the-secret', undefined, insecure);
    await expect(oidc.clientCredentialsGrant(config)).rejects.toMatchObject({ error: 'invalid_client' });
  });

  test('a confidential app runs the code flow with Basic authentication; refresh tokens revoke', async () => {
    const { clientId, secret } = await confidentialApp();
    const config = await oidc.discovery(issuerOf('acme'), clientId, secret, oidc.ClientSecretBasic(secret), insecure);
    const tokens = await codeFlow(config, 'openid email offline_access', 'http://127.0.0.1/callback');
    const introspectedRefresh = await oidc.tokenIntrospection(config, tokens.refresh_token!);
    expect(introspectedRefresh).toMatchObject({ active: true, token_type: 'refresh_token', client_id: clientId });
    await oidc.tokenRevocation(config, tokens.refresh_token!);
    await expect(oidc.refreshTokenGrant(config, tokens.refresh_token!)).rejects.toMatchObject({ error: 'invalid_grant' });
  });

  test('a disabled app can get no tokens until enabled again', async () => {
    const { clientId, config } = await confidentialApp();
    const url = `${server.baseUrl}/identity/api/acme/clients/${clientId}`;
    const disabled = await rest('PATCH', `${url}?updateMask=enabled`, { token: acmeAdmin, body: { enabled: false } });
    expect(disabled.status).toBe(200);
    expect(disabled.body.client.enabled ?? false).toBe(false);
    await expect(oidc.clientCredentialsGrant(config)).rejects.toMatchObject({ error: 'invalid_client' });
    await rest('PATCH', `${url}?updateMask=enabled`, { token: acmeAdmin, body: { enabled: true } });
    await expect(oidc.clientCredentialsGrant(config)).resolves.toHaveProperty('access_token');
  });

  test('apps of acme are unknown to widgets', async () => {
    const { clientId, secret } = await confidentialApp();
    const asWidgets = await oidc.discovery(issuerOf('widgets'), clientId, secret, undefined, insecure);
    await expect(oidc.clientCredentialsGrant(asWidgets)).rejects.toMatchObject({ error: 'invalid_client' });

    const { clientId: publicId } = await publicApp();
    const page = await fetch(
      `${server.baseUrl}/identity/widgets/oauth2/authorize?client_id=${publicId}&redirect_uri=${encodeURIComponent(redirectUri)}&response_type=code`,
      { redirect: 'manual' },
    );
    expect(page.status).toBe(400);
    expect(page.headers.get('location')).toBeNull();

    const read = await rest('GET', `${server.baseUrl}/identity/api/widgets/clients/${clientId}`, { token: widgetsAdmin });
    expect(read.status).toBe(404);
  });

  test('an acme token is inactive at widgets introspection and userinfo', async () => {
    const { config } = await publicApp();
    const tokens = await codeFlow(config, 'openid');
    const userinfo = await fetch(`${server.baseUrl}/identity/widgets/oauth2/userinfo`, {
      headers: { authorization: `Bearer ${tokens.access_token}` },
    });
    expect(userinfo.status).toBe(401);
  });
});

async function queryTenant(tenant: string, sql: string, values: unknown[]) {
  const client = new pg.Client({ connectionString: urlForDatabase(tenantDatabaseName(server.databasePrefix, tenant)) });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

describe('NUL characters on the OAuth endpoints', () => {
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  async function expectInvalidRequest(response: Response, parameter: string) {
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.error).toBe('invalid_request');
    expect(body.error_description).toContain(parameter);
  }

  test('token: a NUL in client_id is invalid_request naming it', async () => {
    const response = await fetch(`${server.baseUrl}/identity/acme/oauth2/token`, {
      method: 'POST',
      headers: form,
      body: 'grant_type=client_credentials&client_id=a%00b&client_secret=x',
    });
    await expectInvalidRequest(response, 'client_id');
  });

  test('token: a NUL in the Basic credentials is invalid_request', async () => {
    const response = await fetch(`${server.baseUrl}/identity/acme/oauth2/token`, {
      method: 'POST',
      headers: { ...form, authorization: `Basic ${Buffer.from('a\u0000b:secret').toString('base64')}` },
      body: 'grant_type=client_credentials',
    });
    await expectInvalidRequest(response, 'Basic credentials');
  });

  test('authorize: a NUL in client_id is invalid_request naming it', async () => {
    const response = await fetch(
      `${server.baseUrl}/identity/acme/oauth2/authorize?client_id=a%00b&response_type=code&redirect_uri=${encodeURIComponent(redirectUri)}`,
      { redirect: 'manual' },
    );
    await expectInvalidRequest(response, 'client_id');
  });

  test('revoke: a NUL in token is invalid_request naming it', async () => {
    const response = await fetch(`${server.baseUrl}/identity/acme/oauth2/revoke`, {
      method: 'POST',
      headers: form,
      body: 'token=a%00b&client_id=x',
    });
    await expectInvalidRequest(response, 'token');
  });

  test('introspect: a NUL in the tenant path parameter is invalid_request naming it', async () => {
    const response = await fetch(`${server.baseUrl}/identity/ac%00me/oauth2/introspect`, {
      method: 'POST',
      headers: form,
      body: 'token=x',
    });
    await expectInvalidRequest(response, 'tenant');
  });
});

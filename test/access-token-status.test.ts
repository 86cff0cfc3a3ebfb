import * as oidc from 'openid-client';
import pg from 'pg';

import { tenantDatabaseName } from '../services/platform/tenant-id.ts';
import { urlForDatabase } from './support/database.ts';
import { signInThroughForm } from './support/oauth-browser.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';
import { waitFor } from './support/wait.ts';

// Access tokens stop working on RPCs when their user is disabled or deleted, or when they are
// revoked through the OAuth revocation endpoint, not only when they expire.

let server: TestServer;
let adminToken: string;
const redirectUri = 'com.acme.app:/cb';
const insecure = { execute: [oidc.allowInsecureRequests] };

const api = (path: string) => `${server.baseUrl}/identity/api/acme${path}`;
const me = (token: string) => rest('GET', api('/auth/me'), { token });

async function signUp(name: string): Promise<{ id: string; accessToken: string }> {
  const created = await rest('POST', api('/auth/signup'), { body: { email: `${name}@acme.test`, password: 'a fine passphrase' } });
  expect(created.status).toBe(200);
  return { id: created.body.user.id, accessToken: created.body.accessToken };
}

async function tenantQuery(sql: string, values: unknown[]) {
  const client = new pg.Client({ connectionString: urlForDatabase(tenantDatabaseName(server.databasePrefix, 'acme')) });
  await client.connect();
  try {
    return await client.query(sql, values);
  } finally {
    await client.end();
  }
}

beforeAll(async () => {
  server = await startServer();
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const credentials = await provisionTenant(server.baseUrl, platformToken, 'acme');
  const signedIn = await rest('POST', api('/auth/signin'), {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  adminToken = signedIn.body.accessToken;
});

afterAll(async () => {
  await server?.stop();
});

test('disabled user token rejected until enabled', async () => {
  const erin = await signUp('erin');
  expect((await me(erin.accessToken)).status).toBe(200);

  expect((await rest('POST', api(`/users/${erin.id}:disable`), { token: adminToken, body: {} })).status).toBe(200);
  const rejected = await me(erin.accessToken);
  expect(rejected.status).toBe(401);
  expect(rejected.body.details[0]).toMatchObject({ reason: 'INVALID_TOKEN', metadata: { check: 'SUBJECT_INACTIVE' } });

  expect((await rest('POST', api(`/users/${erin.id}:enable`), { token: adminToken, body: {} })).status).toBe(200);
  expect((await me(erin.accessToken)).status).toBe(200);
});

test('deleted user token rejected', async () => {
  const fred = await signUp('fred');
  expect((await me(fred.accessToken)).status).toBe(200);
  expect((await rest('DELETE', api(`/users/${fred.id}`), { token: adminToken })).status).toBe(200);
  const rejected = await me(fred.accessToken);
  expect(rejected.status).toBe(401);
  expect(rejected.body.details[0].metadata.check).toBe('SUBJECT_INACTIVE');
});

test('database change applies within cache age', async () => {
  const gina = await signUp('gina');
  expect((await me(gina.accessToken)).status).toBe(200);
  // Another replica disabling the user looks like this to the server: only the row changes.
  await tenantQuery("UPDATE users SET status = 'disabled' WHERE id = $1", [gina.id]);
  await waitFor('the token of a user disabled in the database to be rejected', async () => (await me(gina.accessToken)).status === 401, 10_000, 200);
});

test('revoked user token rejected on RPCs', async () => {
  await signUp('hana');
  const created = await rest('POST', api('/clients'), {
    token: adminToken,
    body: { name: 'acme-mobile-app', type: 'public', redirectUris: [redirectUri] },
  });
  expect(created.status).toBe(200);
  const config = await oidc.discovery(new URL(`${server.baseUrl}/identity/acme`), created.body.clientId, undefined, oidc.None(), insecure);
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: redirectUri,
    scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
  });
  const answer = await signInThroughForm(url, { email: 'hana@acme.test', password: 'a fine passphrase' });
  const tokens = await oidc.authorizationCodeGrant(config, new URL(answer.location!), { pkceCodeVerifier: verifier });

  expect((await me(tokens.access_token)).status).toBe(200);
  await oidc.tokenRevocation(config, tokens.access_token);
  const rejected = await me(tokens.access_token);
  expect(rejected.status).toBe(401);
  expect(rejected.body.details[0].metadata.check).toBe('REVOKED');
});

test('client token rejected when disabled or revoked', async () => {
  const created = await rest('POST', api('/clients'), {
    token: adminToken,
    body: { name: 'acme-backend', type: 'confidential', redirectUris: ['http://127.0.0.1/callback'], allowedScopes: ['functions.execute'] },
  });
  const config = await oidc.discovery(
    new URL(`${server.baseUrl}/identity/acme`),
    created.body.clientId,
    created.body.clientSecret,
    undefined,
    insecure,
  );
  const first = await oidc.clientCredentialsGrant(config, { scope: 'functions.execute' });
  // The token authenticates; an app is not a user, so GetCurrentUser finds no user.
  expect((await me(first.access_token)).status).toBe(404);

  const clientUrl = api(`/clients/${created.body.clientId}?updateMask=enabled`);
  expect((await rest('PATCH', clientUrl, { token: adminToken, body: { enabled: false } })).status).toBe(200);
  expect((await me(first.access_token)).body.details[0].metadata.check).toBe('SUBJECT_INACTIVE');
  expect((await rest('PATCH', clientUrl, { token: adminToken, body: { enabled: true } })).status).toBe(200);
  expect((await me(first.access_token)).status).toBe(404);

  await oidc.tokenRevocation(config, first.access_token);
  expect((await me(first.access_token)).body.details[0].metadata.check).toBe('REVOKED');
});

import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

import { queryTenant } from './support/functions.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

// The server runs without TANSU_ALLOW_PRIVATE_PROVIDER_URLS, as in production.
let server: TestServer;
let acmeAdmin: string;
let listener: Server;
let listenerUrl: string;
let requestsSeen = 0;

const providersUrl = () => `${server.baseUrl}/identity/api/acme/settings/oauth-providers`;

beforeAll(async () => {
  server = await startServer();
  const platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const credentials = await provisionTenant(server.baseUrl, platformToken, 'acme');
  const signedIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
    body: { email: credentials.adminEmail, password: credentials.adminPassword },
  });
  acmeAdmin = signedIn.body.accessToken;

  // A local service the tester tried to reach through the provider URLs; it must see nothing.
  listener = createServer((_request, response) => {
    requestsSeen += 1;
    response.setHeader('content-type', 'application/json');
    response.end(JSON.stringify({ issuer: 'internal', error: 'secret internal reply' }));
  });
  await new Promise<void>((resolve) => listener.listen(0, '127.0.0.1', resolve));
  listenerUrl = `http://127.0.0.1:${(listener.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => listener?.close(resolve));
  await server?.stop();
});

describe('provider URLs at create and update', () => {
  const localIssuers = () => [
    listenerUrl,
    'https://127.0.0.1/issuer',
    'https://localhost/issuer',
    'https://LOCALHOST./issuer',
    'https://tenant.localhost/issuer',
    'https://[::1]/issuer',
    'https://[::ffff:127.0.0.1]/issuer',
    'https://2130706433/issuer',
    'https://10.1.2.3/issuer',
    'https://172.20.0.1/issuer',
    'https://192.168.0.10/issuer',
    'https://169.254.169.254/latest',
    'https://100.64.0.1/issuer',
    'https://[fd00::1]/issuer',
    'https://[fe80::1]/issuer',
    'https://0.0.0.0/issuer',
  ];

  test('a local or private issuer is INVALID_ARGUMENT naming issuer', async () => {
    for (const issuer of localIssuers()) {
      const created = await rest('POST', providersUrl(), {
        token: acmeAdmin,
        body: { providerId: 'google', clientId: 'c', clientSecret: 's', issuer },
      });
      expect([issuer, created.status]).toEqual([issuer, 400]);
      expect(created.body.details[0]).toMatchObject({ reason: 'INVALID_ARGUMENT', metadata: { field: 'issuer' } });
    }
  });

  test('plain http and URLs with credentials are refused even for public hosts', async () => {
    for (const issuer of ['http://accounts.example.test', 'https://user:pw@accounts.example.test', 'ftp://a.test']) {
      const created = await rest('POST', providersUrl(), {
        token: acmeAdmin,
        body: { providerId: 'microsoft', clientId: 'c', clientSecret: 's', issuer },
      });
      expect([issuer, created.status]).toEqual([issuer, 400]);
      expect(created.body.details[0].metadata.field).toBe('issuer');
    }
  });

  test('GitHub base URLs on loopback are INVALID_ARGUMENT naming the field', async () => {
    const api = await rest('POST', providersUrl(), {
      token: acmeAdmin,
      body: { providerId: 'github', clientId: 'c', clientSecret: 's', apiBaseUrl: 'https://127.0.0.1:8443' },
    });
    expect(api.status).toBe(400);
    expect(api.body.details[0].metadata.field).toBe('api_base_url');
    const web = await rest('POST', providersUrl(), {
      token: acmeAdmin,
      body: { providerId: 'github', clientId: 'c', clientSecret: 's', webBaseUrl: listenerUrl },
    });
    expect(web.status).toBe(400);
    expect(web.body.details[0].metadata.field).toBe('web_base_url');
  });

  test('update checks the URLs too; a public https issuer is accepted', async () => {
    const created = await rest('POST', providersUrl(), {
      token: acmeAdmin,
      body: { providerId: 'microsoft', clientId: 'c', clientSecret: 's', issuer: 'https://login.example.test/v2.0' },
    });
    expect(created.status).toBe(200);
    const updated = await rest('PUT', `${providersUrl()}/microsoft`, {
      token: acmeAdmin,
      body: { clientId: 'c', issuer: 'https://localhost/v2.0' },
    });
    expect(updated.status).toBe(400);
    expect(updated.body.details[0].metadata.field).toBe('issuer');
  });
});

describe('provider URLs at fetch time', () => {
  beforeAll(async () => {
    // A row stored before the check existed, or while the server allowed private URLs.
    const created = await rest('POST', providersUrl(), {
      token: acmeAdmin,
      body: { providerId: 'google', clientId: 'c', clientSecret: 's', issuer: 'https://accounts.example.test' },
    });
    expect(created.status).toBe(200);
    await queryTenant(server.databasePrefix, 'acme', 'UPDATE external_providers SET settings = $1 WHERE provider = $2', [
      JSON.stringify({ issuer: listenerUrl }),
      'google',
    ]);
  });

  test('the test call is FAILED_PRECONDITION and the local service sees no request', async () => {
    const tested = await rest('POST', `${providersUrl()}/google/test`, { token: acmeAdmin, body: {} });
    expect(tested.status).toBe(400);
    expect(tested.body.details[0].reason).toBe('FAILED_PRECONDITION');
    expect(JSON.stringify(tested.body)).not.toContain('secret internal reply');
    expect(requestsSeen).toBe(0);
  });

  test('the unauthenticated authorize route is FAILED_PRECONDITION and fetches nothing', async () => {
    const response = await fetch(`${server.baseUrl}/identity/api/acme/auth/authorize/google`, { redirect: 'manual' });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.code).toBe(9);
    expect(body.details[0].reason).toBe('FAILED_PRECONDITION');
    expect(requestsSeen).toBe(0);
  });
});

describe('NUL characters on the social routes', () => {
  test('NUL in provider is INVALID_ARGUMENT', async () => {
    const response = await fetch(`${server.baseUrl}/identity/api/acme/auth/authorize/git%00hub`, { redirect: 'manual' });
    expect(response.status).toBe(400);
    const body = await response.json();
    expect(body.code).toBe(3);
    expect(body.details[0]).toMatchObject({ reason: 'INVALID_ARGUMENT', metadata: { field: 'provider' } });
  });

  test('NUL in tenant or query is INVALID_ARGUMENT', async () => {
    const tenant = await fetch(`${server.baseUrl}/identity/api/ac%00me/auth/authorize/github`, { redirect: 'manual' });
    expect(tenant.status).toBe(400);
    expect((await tenant.json()).details[0].metadata.field).toBe('tenant');

    const state = await fetch(`${server.baseUrl}/identity/api/acme/auth/callback/github?state=a%00b&code=c`);
    expect(state.status).toBe(400);
    expect((await state.json()).details[0].metadata.field).toBe('state');
  });
});

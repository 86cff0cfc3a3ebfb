import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { urlForDatabase, testDatabaseUrl } from './support/database.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

async function databasesWithPrefix(prefix: string): Promise<string[]> {
  const client = new pg.Client(testDatabaseUrl());
  await client.connect();
  try {
    const { rows } = await client.query('SELECT datname FROM pg_database WHERE starts_with(datname, $1) ORDER BY datname', [prefix]);
    return rows.map((row) => row.datname);
  } finally {
    await client.end();
  }
}

async function tenantRows(prefix: string): Promise<Array<{ id: string; state: string }>> {
  const client = new pg.Client(urlForDatabase(`${prefix}platform`));
  await client.connect();
  try {
    return (await client.query('SELECT id, state FROM tenants ORDER BY id')).rows;
  } finally {
    await client.end();
  }
}

describe('tenants service', () => {
  let server: TestServer;
  let adminToken: string;

  beforeAll(async () => {
    server = await startServer();
    adminToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  });
  afterAll(async () => {
    await server?.stop();
  });

  const url = (path: string) => `${server.baseUrl}/platform/api/tenants${path}`;

  test('provision returns admin credentials that sign in', async () => {
    const response = await rest('POST', url(''), { token: adminToken, body: { id: 'acme', displayName: 'Acme Corp' } });
    expect(response.status).toBe(200);
    expect(response.body.tenant.id).toBe('acme');
    expect(response.body.tenant.displayName).toBe('Acme Corp');
    expect(response.body.tenant.state).toBe('TENANT_STATE_ACTIVE');
    expect(response.body.adminEmail).toBe('admin@acme.local');
    expect(response.body.adminPassword.length).toBeGreaterThanOrEqual(16);

    const signIn = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'admin@acme.local', password: response.body.adminPassword },
    });
    expect(signIn.status).toBe(200);
    expect(signIn.body.user.roles).toContain('TenantAdmin');

    const jwks = await rest('GET', `${server.baseUrl}/identity/acme/.well-known/jwks.json`);
    expect(jwks.status).toBe(200);
    expect(jwks.body.keys).toHaveLength(1);
    expect(jwks.body.keys[0].kty).toBe('RSA');
    expect(Buffer.from(jwks.body.keys[0].n, 'base64url').length).toBe(256);
  });

  test('existing id is ALREADY_EXISTS', async () => {
    const response = await rest('POST', url(''), { token: adminToken, body: { id: 'acme' } });
    expect(response.status).toBe(409);
    expect(response.body.code).toBe(6);
    expect(response.body.details[0].reason).toBe('TENANT_ALREADY_EXISTS');
  });

  test.each(['ab', 'Acme', 'acme_corp', '-acme', 'acme-', 'a'.repeat(41), 'acme;drop', 'api', 'platform', "x' OR 1=1"])(
    'bad id %p is INVALID_ARGUMENT',
    async (id) => {
      const response = await rest('POST', url(''), { token: adminToken, body: { id } });
      expect(response.status).toBe(400);
      expect(response.body.details[0].reason).toBe('INVALID_TENANT_ID');
    },
  );

  test('non-admin callers are rejected', async () => {
    const anonymous = await rest('POST', url(''), { body: { id: 'sneaky' } });
    expect(anonymous.status).toBe(401);
    await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'user@acme.example', password: 'a fine passphrase' },
    });
    const user = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'user@acme.example', password: 'a fine passphrase' },
    });
    const asUser = await rest('POST', url(''), { token: user.body.accessToken, body: { id: 'sneaky' } });
    expect(asUser.status).toBe(403);
    expect(await databasesWithPrefix(`${server.databasePrefix}tenant_sneaky`)).toEqual([]);
  });

  test('list pages through tenants', async () => {
    await provisionTenant(server.baseUrl, adminToken, 'beta');
    await provisionTenant(server.baseUrl, adminToken, 'gamma');
    const first = await rest('GET', url('?pageSize=2'), { token: adminToken });
    expect(first.status).toBe(200);
    expect(first.body.tenants.map((t: { id: string }) => t.id)).toEqual(['acme', 'beta']);
    const second = await rest('GET', url(`?pageSize=2&pageToken=${first.body.nextPageToken}`), { token: adminToken });
    expect(second.body.tenants.map((t: { id: string }) => t.id)).toEqual(['gamma']);
    expect(second.body.nextPageToken ?? '').toBe('');
    const badToken = await rest('GET', url('?pageToken=garbage'), { token: adminToken });
    expect(badToken.status).toBe(400);
  });

  test('unknown tenant is NOT_FOUND on every surface', async () => {
    const get = await rest('GET', url('/nope'), { token: adminToken });
    expect(get.status).toBe(404);
    const signIn = await rest('POST', `${server.baseUrl}/identity/api/nope/auth/signin`, {
      body: { email: 'a@b.example', password: 'whatever123' },
    });
    expect(signIn.status).toBe(404);
    expect(signIn.body.details[0].reason).toBe('TENANT_NOT_FOUND');
  });

  test('delete drops the database and the record', async () => {
    await provisionTenant(server.baseUrl, adminToken, 'doomed');
    expect(await databasesWithPrefix(`${server.databasePrefix}tenant_doomed`)).toHaveLength(1);
    const response = await rest('DELETE', url('/doomed'), { token: adminToken });
    expect(response.status).toBe(200);
    expect(await databasesWithPrefix(`${server.databasePrefix}tenant_doomed`)).toEqual([]);
    expect((await rest('GET', url('/doomed'), { token: adminToken })).status).toBe(404);
    expect((await rest('DELETE', url('/doomed'), { token: adminToken })).status).toBe(404);
    const jwks = await rest('GET', `${server.baseUrl}/identity/doomed/.well-known/jwks.json`);
    expect(jwks.status).toBe(404);
  });
});

describe('provisioning failures', () => {
  test.each(['record', 'database', 'migrations', 'admin', 'signing-key', 'activate'])(
    'failure after step %s leaves nothing behind',
    async (step) => {
      const server = await startServer({ env: { TANSU_TEST_FAIL_PROVISION_AT: step } });
      try {
        const token = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
        const response = await rest('POST', `${server.baseUrl}/platform/api/tenants`, { token, body: { id: 'fragile' } });
        expect(response.status).toBe(500);
        expect(JSON.stringify(response.body)).not.toContain('injected');
        expect(await tenantRows(server.databasePrefix)).toEqual([]);
        expect(await databasesWithPrefix(`${server.databasePrefix}tenant_fragile`)).toEqual([]);
      } finally {
        await server.stop();
      }
    },
  );

  test('crash mid-way is cleaned up at the next start', async () => {
    // The restart keeps the data directory, whose master key decrypts the platform signing key.
    const dataDir = mkdtempSync(join(tmpdir(), 'tansu-restart-'));
    const first = await startServer({ dataDir });
    const prefix = first.databasePrefix;
    await first.stop();

    // Simulates a process that died after creating the database: a provisioning record, its
    // database, and no session holding the provisioning lock.
    const cluster = new pg.Client(testDatabaseUrl());
    await cluster.connect();
    await cluster.query(`CREATE DATABASE ${prefix}tenant_halfway TEMPLATE ${prefix}tenant_template`);
    await cluster.query(`CREATE DATABASE ${prefix}tenant_orphan`);
    await cluster.end();
    const platformDb = new pg.Client(urlForDatabase(`${prefix}platform`));
    await platformDb.connect();
    await platformDb.query(
      "INSERT INTO tenants (id, display_name, state, database_name) VALUES ('halfway', 'x', 'provisioning', $1)",
      [`${prefix}tenant_halfway`],
    );
    await platformDb.end();

    const second = await startServer({ databasePrefix: prefix, dataDir });
    try {
      expect(await tenantRows(prefix)).toEqual([]);
      expect(await databasesWithPrefix(`${prefix}tenant_`)).toEqual([`${prefix}tenant_template`]);
    } finally {
      await second.stop();
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});

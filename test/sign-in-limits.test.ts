import { hash as argon2Hash } from '@node-rs/argon2';
import pg from 'pg';

import { ARGON2_PARAMETERS, needsRehash } from '../services/identity/passwords.ts';

import { urlForDatabase } from './support/database.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

async function tenantQuery(server: TestServer, tenant: string, sql: string, values: unknown[] = []) {
  const client = new pg.Client(urlForDatabase(`${server.databasePrefix}tenant_${tenant}`));
  await client.connect();
  try {
    return (await client.query(sql, values)).rows;
  } finally {
    await client.end();
  }
}

describe('signup rate limit', () => {
  let server: TestServer;

  afterEach(async () => {
    await server?.stop();
  });

  const signUp = (n: number, headers: Record<string, string> = {}) =>
    rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: `user${n}@example.com`, password: 'good passphrase here' },
      headers,
    });

  test('eleventh signup from one address in an hour is 429', async () => {
    server = await startServer();
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
    for (let n = 0; n < 10; n++) expect((await signUp(n)).status).toBe(200);
    const limited = await signUp(10);
    expect(limited.status).toBe(429);
    expect(limited.body.details.map((d: { '@type': string }) => d['@type'])).toContain('type.googleapis.com/google.rpc.RetryInfo');
    expect(Number(limited.headers.get('retry-after'))).toBeGreaterThan(3000);
    const users = await tenantQuery(server, 'acme', "SELECT count(*)::int AS n FROM users WHERE email LIKE 'user%'");
    expect(users[0].n).toBe(10);
  });

  test('X-Forwarded-For counts only from trusted proxies', async () => {
    server = await startServer({ env: { TANSU_TRUSTED_PROXIES: '127.0.0.1' } });
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
    for (let n = 0; n < 10; n++) expect((await signUp(n, { 'x-forwarded-for': '203.0.113.7' })).status).toBe(200);
    expect((await signUp(10, { 'x-forwarded-for': '203.0.113.7' })).status).toBe(429);
    // Another client behind the same proxy has its own budget.
    expect((await signUp(11, { 'x-forwarded-for': '203.0.113.8' })).status).toBe(200);
    const ips = await tenantQuery(server, 'acme', 'SELECT DISTINCT ip FROM signup_attempts ORDER BY ip');
    expect(ips.map((row) => row.ip)).toEqual(['203.0.113.7', '203.0.113.8']);
  });

  test('X-Forwarded-For from an untrusted peer is ignored', async () => {
    server = await startServer();
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
    for (let n = 0; n < 10; n++) expect((await signUp(n, { 'x-forwarded-for': `198.51.100.${n}` })).status).toBe(200);
    expect((await signUp(10, { 'x-forwarded-for': '198.51.100.99' })).status).toBe(429);
  });
});

describe('lockout and login activity', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
    await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'target@example.com', password: 'the right passphrase' },
    });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const signIn = (password: string) =>
    rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'target@example.com', password },
      headers: { 'user-agent': 'lockout-test/1.0' },
    });

  test('five failures lock the account even for the right password', async () => {
    for (let n = 0; n < 5; n++) expect((await signIn(`wrong ${n}`)).status).toBe(401);
    const locked = await signIn('the right passphrase');
    expect(locked.status).toBe(429);
    expect(locked.body.details[0].reason).toBe('ACCOUNT_LOCKED');
    const retryAfter = Number(locked.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);
  });

  test('lock ends after its duration', async () => {
    await tenantQuery(server, 'acme', "UPDATE users SET locked_until = now() - interval '1 second' WHERE email = 'target@example.com'");
    expect((await signIn('the right passphrase')).status).toBe(200);
  });

  test('every attempt is in login activity', async () => {
    await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email: 'ghost@example.com', password: 'whatever123' },
    });
    const rows = await tenantQuery(server, 'acme', 'SELECT email, ip, user_agent, result, at FROM login_activity ORDER BY id');
    expect(rows.map((row) => row.result)).toEqual([
      ...Array(5).fill('invalid_credentials'),
      'locked_out',
      'success',
      'invalid_credentials',
    ]);
    expect(rows[0].ip).toBe('127.0.0.1');
    expect(rows[0].user_agent).toBe('lockout-test/1.0');
    expect(rows[7].email).toBe('ghost@example.com');
    expect(rows.every((row) => row.at instanceof Date)).toBe(true);
  });
});

describe('sign-in failure throttle', () => {
  let server: TestServer;

  beforeAll(async () => {
    // The test client is its own trusted proxy, so X-Forwarded-For picks each attempt's address.
    server = await startServer({ env: { TANSU_TRUSTED_PROXIES: '127.0.0.1' } });
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
    for (const email of ['real@example.com', 'steady@example.com']) {
      const signedUp = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
        body: { email, password: 'the right passphrase' },
        headers: { 'x-forwarded-for': '192.0.2.1' },
      });
      expect(signedUp.status).toBe(200);
    }
  });
  afterAll(async () => {
    await server?.stop();
  });

  const signIn = (email: string, password: string, ip: string) =>
    rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, {
      body: { email, password },
      headers: { 'x-forwarded-for': ip },
    });

  test('unknown email locks like a real account', async () => {
    for (let n = 0; n < 5; n++) {
      expect((await signIn('real@example.com', `wrong ${n}`, '198.51.100.1')).status).toBe(401);
      expect((await signIn('nobody@example.com', `wrong ${n}`, '198.51.100.2')).status).toBe(401);
    }
    const real = await signIn('real@example.com', 'the right passphrase', '198.51.100.1');
    const unknown = await signIn('nobody@example.com', 'the right passphrase', '198.51.100.2');
    expect(real.status).toBe(429);
    expect(unknown.status).toBe(429);
    expect(unknown.body.code).toBe(real.body.code);
    expect(unknown.body.message).toBe(real.body.message);
    expect(unknown.body.details.map((detail: { '@type': string }) => detail['@type'])).toEqual(
      real.body.details.map((detail: { '@type': string }) => detail['@type']),
    );
    expect(unknown.body.details[0].reason).toBe('ACCOUNT_LOCKED');
    for (const response of [real, unknown]) {
      const retryAfter = Number(response.headers.get('retry-after'));
      expect(retryAfter).toBeGreaterThan(14 * 60);
      expect(retryAfter).toBeLessThanOrEqual(15 * 60);
    }
  });

  test('twenty failures throttle one IP', async () => {
    for (let n = 0; n < 20; n++) {
      expect((await signIn(`guess${n}@example.com`, 'a wrong passphrase', '203.0.113.50')).status).toBe(401);
    }
    const limited = await signIn('steady@example.com', 'the right passphrase', '203.0.113.50');
    expect(limited.status).toBe(429);
    expect(limited.body.details[0].reason).toBe('RATE_LIMITED');
    expect(limited.body.details.map((detail: { '@type': string }) => detail['@type'])).toContain(
      'type.googleapis.com/google.rpc.RetryInfo',
    );
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(14 * 60);
    expect(retryAfter).toBeLessThanOrEqual(15 * 60);

    // Another address keeps its own budget.
    expect((await signIn('steady@example.com', 'the right passphrase', '203.0.113.51')).status).toBe(200);
    const rows = await tenantQuery(server, 'acme', "SELECT ip FROM login_activity WHERE result = 'rate_limited'");
    expect(rows.map((row) => row.ip)).toEqual(['203.0.113.50']);
  });
});

describe('password rehash', () => {
  let server: TestServer;

  beforeAll(async () => {
    server = await startServer();
    await provisionTenant(server.baseUrl, await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword), 'acme');
  });
  afterAll(async () => {
    await server?.stop();
  });

  test('sign-in upgrades an old hash', async () => {
    const password = 'an old but right passphrase';
    const signedUp = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'old-hash@example.com', password },
    });
    expect(signedUp.status).toBe(200);
    // A hash made with weaker parameters, as stored before a parameter change.
    const oldHash = await argon2Hash(password, { ...ARGON2_PARAMETERS, memoryCost: 8192, timeCost: 1 });
    await tenantQuery(server, 'acme', 'UPDATE users SET password_hash = $1 WHERE email = $2', [oldHash, 'old-hash@example.com']);

    const signIn = () =>
      rest('POST', `${server.baseUrl}/identity/api/acme/auth/signin`, { body: { email: 'old-hash@example.com', password } });
    expect((await signIn()).status).toBe(200);
    const [row] = await tenantQuery(server, 'acme', 'SELECT password_hash FROM users WHERE email = $1', ['old-hash@example.com']);
    expect(row.password_hash).not.toBe(oldHash);
    expect(needsRehash(row.password_hash)).toBe(false);
    expect((await signIn()).status).toBe(200);
  });
});

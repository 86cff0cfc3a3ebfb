import pg from 'pg';

import { urlForDatabase } from './support/database.ts';
import { startServer, type TestServer } from './support/server.ts';

describe('platform admin sign-in limits', () => {
  let server: TestServer;

  beforeAll(async () => {
    // 127.0.0.1 is a trusted proxy, so X-Forwarded-For gives each request its client address.
    server = await startServer({ env: { TANSU_TRUSTED_PROXIES: '127.0.0.1' } });
  });
  afterAll(async () => {
    await server?.stop();
  });

  const signIn = (password: string, clientAddress: string, username = server.adminEmail) =>
    fetch(`${server.baseUrl}/identity/connect/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-forwarded-for': clientAddress },
      body: new URLSearchParams({ grant_type: 'password', username, password }),
    });

  test('failures lock one address out, not the admin', async () => {
    for (let n = 0; n < 5; n++) expect((await signIn(`wrong ${n}`, '203.0.113.10')).status).toBe(401);
    const locked = await signIn(server.adminPassword, '203.0.113.10');
    expect(locked.status).toBe(429);
    expect((await locked.json()).details[0].reason).toBe('ACCOUNT_LOCKED');
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(800);

    const elsewhere = await signIn(server.adminPassword, '203.0.113.11');
    expect(elsewhere.status).toBe(200);
  });

  test('twenty failures throttle an address for any email', async () => {
    for (let n = 0; n < 20; n++) {
      expect((await signIn('wrong', '198.51.100.5', `nobody${n}@example.com`)).status).toBe(401);
    }
    const throttled = await signIn(server.adminPassword, '198.51.100.5');
    expect(throttled.status).toBe(429);
    expect((await throttled.json()).details[0].reason).toBe('RATE_LIMITED');
  });

  test('every attempt is recorded', async () => {
    const client = new pg.Client(urlForDatabase(`${server.databasePrefix}platform`));
    await client.connect();
    const { rows } = await client.query(
      "SELECT result, count(*)::int AS n FROM platform_sign_in_activity WHERE ip = '203.0.113.10' GROUP BY result ORDER BY result",
    );
    await client.end();
    expect(rows).toEqual([
      { result: 'invalid_credentials', n: 5 },
      { result: 'locked_out', n: 1 },
    ]);
  });
});

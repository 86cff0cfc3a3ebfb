import * as jose from 'jose';

import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let platformToken: string;
let adminToken: string;
let adminId: string;
let widgetsAdmin: string;
const ids: Record<string, string> = {};
const refreshTokens: Record<string, string> = {};
const startedAt = new Date();

const password = 'a perfectly fine passphrase';
const names = ['alice', 'bob', 'carol', 'dave', 'erin'];

const api = (path: string) => `${server.baseUrl}/identity/api/acme${path}`;

function signIn(tenant: string, email: string, secret = password) {
  return rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, { body: { email, password: secret } });
}

beforeAll(async () => {
  server = await startServer();
  platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const acme = await provisionTenant(server.baseUrl, platformToken, 'acme');
  const widgets = await provisionTenant(server.baseUrl, platformToken, 'widgets');
  const admin = await signIn('acme', acme.adminEmail, acme.adminPassword);
  adminToken = admin.body.accessToken;
  adminId = admin.body.user.id;
  widgetsAdmin = (await signIn('widgets', widgets.adminEmail, widgets.adminPassword)).body.accessToken;
  for (const name of names) {
    const created = await rest('POST', api('/auth/signup'), { body: { email: `${name}@acme.test`, password } });
    ids[name] = created.body.user.id;
    refreshTokens[name] = created.body.refreshToken;
  }
  await signIn('acme', 'bob@acme.test', 'not the password');
});

afterAll(async () => {
  await server?.stop();
});

describe('users permissions', () => {
  test('anonymous caller is unauthenticated', async () => {
    expect((await rest('GET', api('/users'))).status).toBe(401);
  });

  test('regular user is denied', async () => {
    const user = (await signIn('acme', 'erin@acme.test')).body.accessToken;
    for (const [method, path] of [
      ['GET', '/users'],
      ['GET', `/users/${ids.alice}`],
      ['POST', `/users/${ids.alice}:disable`],
      ['DELETE', `/users/${ids.alice}`],
      ['GET', '/login-activity'],
      ['GET', '/audit-log'],
    ]) {
      const response = await rest(method, api(path), { token: user, body: method === 'POST' ? {} : undefined });
      expect([path, response.status]).toEqual([path, 403]);
    }
  });

  test('widgets admin is denied on acme and on a missing tenant', async () => {
    expect((await rest('GET', api('/users'), { token: widgetsAdmin })).status).toBe(403);
    const missing = await rest('GET', `${server.baseUrl}/identity/api/no-such-tenant/users`, { token: widgetsAdmin });
    expect(missing.status).toBe(403);
  });

  test('platform admin may list users', async () => {
    expect((await rest('GET', api('/users'), { token: platformToken })).status).toBe(200);
  });
});

describe('listing users', () => {
  test('pages of two cover every user in email order', async () => {
    const emails: string[] = [];
    let pageToken = '';
    for (let page = 0; page < 10; page++) {
      const response = await rest('GET', api(`/users?pageSize=2&pageToken=${pageToken}`), { token: adminToken });
      expect(response.status).toBe(200);
      expect(response.body.users.length).toBeLessThanOrEqual(2);
      emails.push(...response.body.users.map((user: any) => user.email));
      pageToken = response.body.nextPageToken ?? '';
      if (!pageToken) break;
    }
    expect(emails).toEqual(['admin@acme.local', ...names.map((name) => `${name}@acme.test`)]);
  });

  test('email search matches part of the address', async () => {
    const response = await rest('GET', api('/users?email=BOB'), { token: adminToken });
    expect(response.body.users.map((user: any) => user.email)).toEqual(['bob@acme.test']);
  });

  test('search treats wildcards literally', async () => {
    const response = await rest('GET', api('/users?email=%25'), { token: adminToken });
    expect(response.body.users ?? []).toEqual([]);
  });

  test('list shows last sign-in time and address', async () => {
    await signIn('acme', 'alice@acme.test');
    const response = await rest('GET', api('/users?email=alice'), { token: adminToken });
    const [alice] = response.body.users;
    expect(new Date(alice.lastSignInTime).getTime()).toBeGreaterThanOrEqual(startedAt.getTime() - 1000);
    expect(alice.lastSignInIp).toBe('127.0.0.1');
  });

  test('page token of another filter is rejected', async () => {
    const first = await rest('GET', api('/users?pageSize=1'), { token: adminToken });
    const other = await rest('GET', api(`/users?pageSize=1&email=a&pageToken=${first.body.nextPageToken}`), {
      token: adminToken,
    });
    expect(other.status).toBe(400);
    expect(other.body.details[0].reason).toBe('INVALID_PAGE_TOKEN');
  });

  test('unknown user is NOT_FOUND and a malformed id INVALID_ARGUMENT', async () => {
    expect((await rest('GET', api('/users/00000000-0000-4000-8000-000000000000'), { token: adminToken })).status).toBe(404);
    expect((await rest('GET', api('/users/nope'), { token: adminToken })).status).toBe(400);
  });
});

describe('disable and enable', () => {
  test('disabled user cannot sign in or refresh', async () => {
    const disabled = await rest('POST', api(`/users/${ids.bob}:disable`), { token: adminToken, body: {} });
    expect(disabled.status).toBe(200);
    expect(disabled.body.user.status).toBe('USER_STATUS_DISABLED');

    const signInResponse = await signIn('acme', 'bob@acme.test');
    expect(signInResponse.status).toBe(401);
    const refresh = await rest('POST', api('/auth/refresh'), { body: { refreshToken: refreshTokens.bob } });
    expect(refresh.status).toBe(401);

    const filtered = await rest('GET', api('/users?status=USER_STATUS_DISABLED'), { token: adminToken });
    expect(filtered.body.users.map((user: any) => user.email)).toEqual(['bob@acme.test']);
  });

  test('enabled user signs in again', async () => {
    const enabled = await rest('POST', api(`/users/${ids.bob}:enable`), { token: adminToken, body: {} });
    expect(enabled.status).toBe(200);
    expect(enabled.body.user.status).toBe('USER_STATUS_ACTIVE');
    const signInResponse = await signIn('acme', 'bob@acme.test');
    expect(signInResponse.status).toBe(200);
    // Disabling revoked the old session for good.
    const refresh = await rest('POST', api('/auth/refresh'), { body: { refreshToken: refreshTokens.bob } });
    expect(refresh.status).toBe(401);
  });
});

describe('roles', () => {
  test('last admin cannot drop their own TenantAdmin role', async () => {
    const response = await rest('POST', api(`/users/${adminId}:setRoles`), { token: adminToken, body: { roles: ['User'] } });
    expect(response.status).toBe(400);
    expect(response.body.details[0].reason).toBe('LAST_TENANT_ADMIN');
  });

  test('last admin cannot be disabled or deleted', async () => {
    const disabled = await rest('POST', api(`/users/${adminId}:disable`), { token: adminToken, body: {} });
    expect(disabled.body.details[0].reason).toBe('LAST_TENANT_ADMIN');
    const deleted = await rest('DELETE', api(`/users/${adminId}`), { token: adminToken });
    expect(deleted.body.details[0].reason).toBe('LAST_TENANT_ADMIN');
  });

  test('unknown role is rejected naming the field', async () => {
    const response = await rest('POST', api(`/users/${ids.dave}:setRoles`), { token: adminToken, body: { roles: ['Wizard'] } });
    expect(response.status).toBe(400);
    expect(response.body.details[0].metadata.field).toBe('roles');
    expect(response.body.message).toContain('Wizard');
  });

  test('new admin can manage users and the old admin may step down', async () => {
    const promoted = await rest('POST', api(`/users/${ids.dave}:setRoles`), {
      token: adminToken,
      body: { roles: ['TenantAdmin', 'User', 'User'] },
    });
    expect(promoted.status).toBe(200);
    expect(promoted.body.user.roles).toEqual(['TenantAdmin', 'User']);

    const daveToken = (await signIn('acme', 'dave@acme.test')).body.accessToken;
    expect(jose.decodeJwt(daveToken).roles).toContain('TenantAdmin');
    expect((await rest('GET', api('/users'), { token: daveToken })).status).toBe(200);

    const stepDown = await rest('POST', api(`/users/${adminId}:setRoles`), { token: daveToken, body: { roles: ['User'] } });
    expect(stepDown.status).toBe(200);
    const restore = await rest('POST', api(`/users/${adminId}:setRoles`), {
      token: daveToken,
      body: { roles: ['TenantAdmin', 'User'] },
    });
    expect(restore.status).toBe(200);
  });
});

describe('delete', () => {
  test('deleted user is gone with their sessions', async () => {
    const deleted = await rest('DELETE', api(`/users/${ids.carol}`), { token: adminToken });
    expect(deleted.status).toBe(200);
    expect((await rest('GET', api(`/users/${ids.carol}`), { token: adminToken })).status).toBe(404);
    expect((await rest('DELETE', api(`/users/${ids.carol}`), { token: adminToken })).status).toBe(404);
    expect((await rest('POST', api('/auth/refresh'), { body: { refreshToken: refreshTokens.carol } })).status).toBe(401);
    expect((await signIn('acme', 'carol@acme.test')).status).toBe(401);
  });
});

describe('login activity', () => {
  test('filters by user and result', async () => {
    const failed = await rest('GET', api(`/login-activity?userId=${ids.bob}&result=LOGIN_RESULT_INVALID_CREDENTIALS`), {
      token: adminToken,
    });
    expect(failed.status).toBe(200);
    expect(failed.body.entries).toHaveLength(1);
    expect(failed.body.entries[0].email).toBe('bob@acme.test');

    const disabled = await rest('GET', api(`/login-activity?userId=${ids.bob}&result=LOGIN_RESULT_DISABLED`), {
      token: adminToken,
    });
    expect(disabled.body.entries).toHaveLength(1);

    const all = await rest('GET', api(`/login-activity?userId=${ids.bob}`), { token: adminToken });
    expect(all.body.entries.map((entry: any) => entry.result)).toEqual([
      'LOGIN_RESULT_SUCCESS',
      'LOGIN_RESULT_DISABLED',
      'LOGIN_RESULT_INVALID_CREDENTIALS',
    ]);
  });

  test('filters by date range', async () => {
    const future = new Date(Date.now() + 3600_000).toISOString();
    const past = new Date(startedAt.getTime() - 3600_000).toISOString();
    const later = await rest('GET', api(`/login-activity?startTime=${future}`), { token: adminToken });
    expect(later.body.entries ?? []).toEqual([]);
    const earlier = await rest('GET', api(`/login-activity?endTime=${past}`), { token: adminToken });
    expect(earlier.body.entries ?? []).toEqual([]);
    const during = await rest('GET', api(`/login-activity?startTime=${past}&endTime=${future}`), { token: adminToken });
    expect(during.body.entries.length).toBeGreaterThanOrEqual(5);
    const backwards = await rest('GET', api(`/login-activity?startTime=${future}&endTime=${past}`), { token: adminToken });
    expect(backwards.status).toBe(400);
  });

  test('pages of one follow newest first', async () => {
    const first = await rest('GET', api('/login-activity?pageSize=1'), { token: adminToken });
    const second = await rest('GET', api(`/login-activity?pageSize=1&pageToken=${first.body.nextPageToken}`), {
      token: adminToken,
    });
    expect(Number(second.body.entries[0].id)).toBeLessThan(Number(first.body.entries[0].id));
  });
});

describe('audit log', () => {
  test('every user action is recorded with actor and changes, without secrets', async () => {
    const response = await rest('GET', api('/audit-log?pageSize=100'), { token: adminToken });
    expect(response.status).toBe(200);
    const entries = response.body.entries as any[];
    const find = (action: string, target: string) => entries.find((entry) => entry.action === action && entry.target === target);

    expect(find('user.disabled', ids.bob).actor).toBe(adminId);
    expect(find('user.disabled', ids.bob).details.revokedSessions).toBe(1);
    expect(find('user.enabled', ids.bob).actor).toBe(adminId);
    expect(find('user.roles_set', ids.dave).details).toMatchObject({ from: ['User'], to: ['TenantAdmin', 'User'] });
    expect(find('user.deleted', ids.carol).details.email).toBe('carol@acme.test');
    const daveId = ids.dave;
    expect(entries.some((entry) => entry.action === 'user.roles_set' && entry.actor === daveId)).toBe(true);

    const text = JSON.stringify(entries);
    expect(text).not.toContain(password);
    expect(text).not.toContain('argon2');
    expect(text).not.toContain(refreshTokens.alice);
  });

  test('action filter returns only that action', async () => {
    const response = await rest('GET', api('/audit-log?action=user.deleted'), { token: adminToken });
    expect(response.body.entries.map((entry: any) => entry.action)).toEqual(['user.deleted']);
  });

  test('rejected changes leave no audit entry', async () => {
    const response = await rest('GET', api(`/audit-log?action=user.roles_set`), { token: adminToken });
    const wizard = (response.body.entries as any[]).filter((entry) => JSON.stringify(entry.details).includes('Wizard'));
    expect(wizard).toEqual([]);
  });
});

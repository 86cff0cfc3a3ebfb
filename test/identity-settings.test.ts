import * as jose from 'jose';
import pg from 'pg';

import { tenantDatabaseName } from '../services/platform/tenant-id.ts';
import { urlForDatabase } from './support/database.ts';
import { platformAdminToken, provisionTenant, rest } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';

let server: TestServer;
let platformToken: string;
let acmeAdmin: string;
let acmeCredentials: { adminEmail: string; adminPassword: string };
let acmeUser: string;
let widgetsAdmin: string;

const password = 'a perfectly fine passphrase';

async function signIn(tenant: string, email: string, secret = password) {
  const response = await rest('POST', `${server.baseUrl}/identity/api/${tenant}/auth/signin`, {
    body: { email, password: secret },
  });
  if (response.status !== 200) throw new Error(`sign-in failed: ${response.status} ${JSON.stringify(response.body)}`);
  return response.body;
}

function tenantSettings(tenant: string, token?: string) {
  return rest('GET', `${server.baseUrl}/identity/api/${tenant}/settings`, { token });
}

function updateTenantSettings(tenant: string, token: string, settings: object, updateMask?: string) {
  return rest('PUT', `${server.baseUrl}/identity/api/${tenant}/settings`, { token, body: { settings, updateMask } });
}

function updatePlatformSettings(token: string, settings: object, updateMask?: string) {
  return rest('PUT', `${server.baseUrl}/identity/admin/settings`, { token, body: { settings, updateMask } });
}

beforeAll(async () => {
  server = await startServer({ env: { TANSU_KEY_ROTATION_CHECK_SECONDS: '1' } });
  platformToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  const acme = await provisionTenant(server.baseUrl, platformToken, 'acme');
  const widgets = await provisionTenant(server.baseUrl, platformToken, 'widgets');
  acmeCredentials = acme;
  acmeAdmin = (await signIn('acme', acme.adminEmail, acme.adminPassword)).accessToken;
  widgetsAdmin = (await signIn('widgets', widgets.adminEmail, widgets.adminPassword)).accessToken;
  await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, { body: { email: 'user@acme.test', password } });
  acmeUser = (await signIn('acme', 'user@acme.test')).accessToken;
});

afterAll(async () => {
  await server?.stop();
});

describe('settings permissions', () => {
  test('anonymous caller is unauthenticated', async () => {
    expect((await tenantSettings('acme')).status).toBe(401);
    expect((await rest('GET', `${server.baseUrl}/identity/admin/settings`)).status).toBe(401);
  });

  test('regular user is denied', async () => {
    const response = await tenantSettings('acme', acmeUser);
    expect(response.status).toBe(403);
    expect(response.body.details[0].reason).toBe('PERMISSION_DENIED');
    expect((await updateTenantSettings('acme', acmeUser, { timeZone: 'UTC' }, 'timeZone')).status).toBe(403);
  });

  test('acme admin is denied on widgets and on a missing tenant', async () => {
    expect((await tenantSettings('widgets', acmeAdmin)).status).toBe(403);
    expect((await updateTenantSettings('widgets', acmeAdmin, { timeZone: 'UTC' }, 'timeZone')).status).toBe(403);
    const missing = await tenantSettings('no-such-tenant', acmeAdmin);
    expect(missing.status).toBe(403);
    expect(missing.body.details[0].reason).toBe('PERMISSION_DENIED');
  });

  test('tenant admin is denied platform settings', async () => {
    expect((await rest('GET', `${server.baseUrl}/identity/admin/settings`, { token: acmeAdmin })).status).toBe(403);
    expect((await updatePlatformSettings(acmeAdmin, { lockoutMaxAttempts: 3 }, 'lockoutMaxAttempts')).status).toBe(403);
  });

  test('platform admin reads platform and tenant settings', async () => {
    const platform = await rest('GET', `${server.baseUrl}/identity/admin/settings`, { token: platformToken });
    expect(platform.status).toBe(200);
    expect(platform.body.settings.accessTokenLifetime).toBe('3600s');
    expect(platform.body.settings.refreshTokenLifetime).toBe(`${14 * 86400}s`);
    expect(platform.body.settings.keyRotationInterval).toBe(`${30 * 86400}s`);
    expect(platform.body.settings.lockoutMaxAttempts).toBe(5);
    expect(platform.body.settings.lockoutDuration).toBe('900s');
    expect(platform.body.settings.timeZone).toBeUndefined();
    expect(platform.body.sources.access_token_lifetime).toBe('SETTING_SOURCE_DEFAULT');
    expect((await tenantSettings('acme', platformToken)).status).toBe(200);
  });

  test('platform admin gets NOT_FOUND for a missing tenant', async () => {
    expect((await tenantSettings('no-such-tenant', platformToken)).status).toBe(404);
  });
});

describe('settings inheritance', () => {
  test('platform value, tenant override and clearing each set the source', async () => {
    const platformSet = await updatePlatformSettings(platformToken, { lockoutMaxAttempts: 7 }, 'lockoutMaxAttempts');
    expect(platformSet.status).toBe(200);
    expect(platformSet.body.sources.lockout_max_attempts).toBe('SETTING_SOURCE_PLATFORM');

    let acme = await tenantSettings('acme', acmeAdmin);
    expect(acme.body.settings.lockoutMaxAttempts).toBe(7);
    expect(acme.body.sources.lockout_max_attempts).toBe('SETTING_SOURCE_PLATFORM');

    const override = await updateTenantSettings('acme', acmeAdmin, { lockoutMaxAttempts: 3 }, 'lockoutMaxAttempts');
    expect(override.status).toBe(200);
    expect(override.body.settings.lockoutMaxAttempts).toBe(3);
    expect(override.body.sources.lockout_max_attempts).toBe('SETTING_SOURCE_TENANT');
    const widgets = await tenantSettings('widgets', widgetsAdmin);
    expect(widgets.body.settings.lockoutMaxAttempts).toBe(7);

    const cleared = await updateTenantSettings('acme', acmeAdmin, {}, 'lockoutMaxAttempts');
    expect(cleared.status).toBe(200);
    expect(cleared.body.settings.lockoutMaxAttempts).toBe(7);
    expect(cleared.body.sources.lockout_max_attempts).toBe('SETTING_SOURCE_PLATFORM');

    await updatePlatformSettings(platformToken, {}, 'lockoutMaxAttempts');
    acme = await tenantSettings('acme', acmeAdmin);
    expect(acme.body.settings.lockoutMaxAttempts).toBe(5);
    expect(acme.body.sources.lockout_max_attempts).toBe('SETTING_SOURCE_DEFAULT');
  });

  test('platform lifetime change applies to tenant tokens at once', async () => {
    await updatePlatformSettings(platformToken, { accessTokenLifetime: '900s' }, 'accessTokenLifetime');
    try {
      await rest('POST', `${server.baseUrl}/identity/api/widgets/auth/signup`, { body: { email: 'w@widgets.test', password } });
      const tokens = await signIn('widgets', 'w@widgets.test');
      expect(Number(tokens.expiresIn)).toBe(900);
    } finally {
      await updatePlatformSettings(platformToken, {}, 'accessTokenLifetime');
    }
  });

  test('tenant access token lifetime applies to issued tokens', async () => {
    const updated = await updateTenantSettings('acme', acmeAdmin, { accessTokenLifetime: '120s' }, 'accessTokenLifetime');
    expect(updated.status).toBe(200);
    const tokens = await signIn('acme', 'user@acme.test');
    expect(Number(tokens.expiresIn)).toBe(120);
    const claims = jose.decodeJwt(tokens.accessToken);
    expect(claims.exp! - claims.iat!).toBe(120);
  });

  test('password policy override applies to signup', async () => {
    await updateTenantSettings('acme', acmeAdmin, { passwordPolicy: { minLength: 30 } }, 'passwordPolicy.minLength');
    const weak = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'short@acme.test', password },
    });
    expect(weak.status).toBe(400);
    expect(weak.body.message).toContain('at least 30 characters');
    const settings = await tenantSettings('acme', acmeAdmin);
    expect(settings.body.sources['password_policy.min_length']).toBe('SETTING_SOURCE_TENANT');
    expect(settings.body.sources['password_policy.require_digit']).toBe('SETTING_SOURCE_DEFAULT');
    await updateTenantSettings('acme', acmeAdmin, {}, 'passwordPolicy');
    const strong = await rest('POST', `${server.baseUrl}/identity/api/acme/auth/signup`, {
      body: { email: 'short@acme.test', password },
    });
    expect(strong.status).toBe(200);
  });
});

describe('function limit ceilings', () => {
  test.each([
    ['functionExecutionsPerMinute', 1_000_000, 'settings.function_executions_per_minute', 'limit of 100,'],
    ['functionTimeout', '300s', 'settings.function_timeout', 'limit of 30 seconds'],
    ['functionMemoryMb', 512, 'settings.function_memory_mb', 'limit of 128,'],
  ])('tenant %s above the default is rejected', async (name, value, field, ceiling) => {
    const response = await updateTenantSettings('acme', acmeAdmin, { [name]: value }, name);
    expect(response.status).toBe(400);
    expect(response.body.details[0].reason).toBe('INVALID_ARGUMENT');
    expect(response.body.details[0].metadata.field).toBe(field);
    expect(response.body.message).toContain(field);
    expect(response.body.message).toContain(ceiling);
  });

  test('platform value sets the ceiling', async () => {
    const raised = await updatePlatformSettings(platformToken, { functionMemoryMb: 256 }, 'functionMemoryMb');
    expect(raised.status).toBe(200);
    const override = await updateTenantSettings('acme', acmeAdmin, { functionMemoryMb: 200 }, 'functionMemoryMb');
    expect(override.status).toBe(200);
    expect(override.body.settings.functionMemoryMb).toBe(200);
    expect(override.body.sources.function_memory_mb).toBe('SETTING_SOURCE_TENANT');
    const over = await updateTenantSettings('acme', acmeAdmin, { functionMemoryMb: 300 }, 'functionMemoryMb');
    expect(over.status).toBe(400);

    const lowered = await updatePlatformSettings(platformToken, { functionMemoryMb: 64 }, 'functionMemoryMb');
    expect(lowered.status).toBe(200);
    const capped = await tenantSettings('acme', acmeAdmin);
    expect(capped.body.settings.functionMemoryMb).toBe(64);
    expect(capped.body.sources.function_memory_mb).toBe('SETTING_SOURCE_PLATFORM');

    await updatePlatformSettings(platformToken, {}, 'functionMemoryMb');
    const defaulted = await tenantSettings('acme', acmeAdmin);
    expect(defaulted.body.settings.functionMemoryMb).toBe(128);
    expect(defaulted.body.sources.function_memory_mb).toBe('SETTING_SOURCE_DEFAULT');

    await updateTenantSettings('acme', acmeAdmin, {}, 'functionMemoryMb');
  });

  test('tenant value below the ceiling applies', async () => {
    const lowered = await updateTenantSettings('acme', acmeAdmin, { functionTimeout: '10s' }, 'functionTimeout');
    expect(lowered.status).toBe(200);
    expect(lowered.body.settings.functionTimeout).toBe('10s');
    expect(lowered.body.sources.function_timeout).toBe('SETTING_SOURCE_TENANT');

    await updateTenantSettings('acme', acmeAdmin, {}, 'functionTimeout');
  });
});

describe('field mask', () => {
  test('only masked fields change', async () => {
    const response = await updateTenantSettings(
      'widgets',
      widgetsAdmin,
      { idTokenLifetime: '600s', signupsPerIpPerHour: 99 },
      'idTokenLifetime',
    );
    expect(response.status).toBe(200);
    expect(response.body.settings.idTokenLifetime).toBe('600s');
    expect(response.body.settings.signupsPerIpPerHour).toBe(10);
    expect(response.body.sources.signups_per_ip_per_hour).toBe('SETTING_SOURCE_DEFAULT');
  });

  test('empty mask changes every set field', async () => {
    const response = await updateTenantSettings('widgets', widgetsAdmin, { signupsPerIpPerHour: 99, timeZone: 'Asia/Tokyo' });
    expect(response.status).toBe(200);
    expect(response.body.settings.signupsPerIpPerHour).toBe(99);
    expect(response.body.settings.timeZone).toBe('Asia/Tokyo');
    expect(response.body.settings.idTokenLifetime).toBe('600s');
  });

  test('unknown mask path is rejected', async () => {
    const response = await updateTenantSettings('widgets', widgetsAdmin, {}, 'colourScheme');
    expect(response.status).toBe(400);
    expect(response.body.details[0].metadata.field).toBe('update_mask');
  });
});

describe('settings validation', () => {
  test.each([
    ['accessTokenLifetime', '10s', 'settings.access_token_lifetime', 'from 1 minute to 1 day'],
    ['refreshReuseGrace', '30s', 'settings.refresh_reuse_grace', 'from 0s to 10 seconds'],
    ['keyRotationInterval', '3600s', 'settings.key_rotation_interval', 'from 1 day to 365 days'],
    ['lockoutDuration', '90s', 'settings.lockout_duration', 'whole minutes'],
    ['lockoutMaxAttempts', 0, 'settings.lockout_max_attempts', 'from 1 to 100'],
    ['timeZone', 'Mars/Olympus_Mons', 'settings.time_zone', 'IANA time zone'],
  ])('%s = %s is rejected', async (name, value, field, range) => {
    const response = await updateTenantSettings('acme', acmeAdmin, { [name]: value }, name);
    expect(response.status).toBe(400);
    expect(response.body.details[0].reason).toBe('INVALID_ARGUMENT');
    expect(response.body.details[0].metadata.field).toBe(field);
    expect(response.body.message).toContain(field);
    expect(response.body.message).toContain(range);
  });

  test('password policy minimum length out of range is rejected', async () => {
    const response = await updateTenantSettings('acme', acmeAdmin, { passwordPolicy: { minLength: 500 } }, 'passwordPolicy');
    expect(response.status).toBe(400);
    expect(response.body.details[0].metadata.field).toBe('settings.password_policy.min_length');
  });

  test('time zone is a tenant-only setting', async () => {
    const response = await updatePlatformSettings(platformToken, { timeZone: 'Europe/Berlin' }, 'timeZone');
    expect(response.status).toBe(400);
    expect(response.body.details[0].metadata.field).toBe('settings.time_zone');
  });

  test('valid time zone is stored for the tenant', async () => {
    const response = await updateTenantSettings('acme', acmeAdmin, { timeZone: 'Europe/Berlin' }, 'timeZone');
    expect(response.status).toBe(200);
    expect(response.body.settings.timeZone).toBe('Europe/Berlin');
    expect(response.body.sources.time_zone).toBe('SETTING_SOURCE_TENANT');
  });
});

describe('settings audit', () => {
  test('tenant audit records the change without secrets', async () => {
    const response = await rest('GET', `${server.baseUrl}/identity/api/acme/audit-log?action=settings.updated`, {
      token: acmeAdmin,
    });
    expect(response.status).toBe(200);
    const zone = response.body.entries.find((entry: any) => entry.details.changes.time_zone);
    expect(zone.details.changes.time_zone).toEqual({ from: null, to: 'Europe/Berlin' });
    expect(zone.actor).toBe(jose.decodeJwt(acmeAdmin).sub);
    expect(JSON.stringify(response.body)).not.toContain(password);
  });

  test('platform audit records platform changes', async () => {
    const platformDb = new pg.Client(urlForDatabase(`${server.databasePrefix}platform`));
    await platformDb.connect();
    try {
      const { rows } = await platformDb.query("SELECT actor, details FROM platform_audit WHERE action = 'settings.updated' ORDER BY id");
      expect(rows.length).toBeGreaterThanOrEqual(2);
      expect(rows[0].actor).toMatch(/^platform:/);
      expect(rows[0].details.changes.lockout_max_attempts).toEqual({ from: null, to: 7 });
    } finally {
      await platformDb.end();
    }
  });
});

describe('signing key rotation', () => {
  const jwksKids = async (tenant: string) =>
    (await rest('GET', `${server.baseUrl}/identity/${tenant}/.well-known/jwks.json`)).body.keys.map((key: any) => key.kid);
  const me = (tenant: string, token: string) => rest('GET', `${server.baseUrl}/identity/api/${tenant}/auth/me`, { token });

  test('regular user cannot rotate', async () => {
    expect((await rest('POST', `${server.baseUrl}/identity/api/acme/keys:rotate`, { token: acmeUser, body: {} })).status).toBe(403);
    expect((await rest('POST', `${server.baseUrl}/identity/api/widgets/keys:rotate`, { token: acmeAdmin, body: {} })).status).toBe(403);
  });

  test('old token verifies during grace and fails after it', async () => {
    const grace = await updateTenantSettings('acme', acmeAdmin, { keyRotationGrace: '3s' }, 'keyRotationGrace');
    expect(grace.status).toBe(200);
    const before = await signIn('acme', 'user@acme.test');
    const oldKid = jose.decodeProtectedHeader(before.accessToken).kid;

    const rotated = await rest('POST', `${server.baseUrl}/identity/api/acme/keys:rotate`, { token: acmeAdmin, body: {} });
    expect(rotated.status).toBe(200);
    expect(rotated.body.retiredKid).toBe(oldKid);
    const newKid = rotated.body.key.kid;
    expect(newKid).not.toBe(oldKid);
    expect(rotated.body.key.state).toBe('SIGNING_KEY_STATE_ACTIVE');

    expect((await me('acme', before.accessToken)).status).toBe(200);
    expect(await jwksKids('acme')).toEqual(expect.arrayContaining([oldKid, newKid]));
    const after = await signIn('acme', 'user@acme.test');
    expect(jose.decodeProtectedHeader(after.accessToken).kid).toBe(newKid);

    const keys = await rest('GET', `${server.baseUrl}/identity/api/acme/keys`, { token: acmeAdmin });
    expect(keys.body.keys.find((key: any) => key.kid === oldKid).state).toBe('SIGNING_KEY_STATE_RETIRING');

    await new Promise((done) => setTimeout(done, 4000));
    const rejected = await me('acme', before.accessToken);
    expect(rejected.status).toBe(401);
    expect(await jwksKids('acme')).not.toContain(oldKid);
    expect((await me('acme', after.accessToken)).status).toBe(200);
    // The admin token of beforeAll was signed with the retired key too, so it is refused now.
    expect((await rest('GET', `${server.baseUrl}/identity/api/acme/keys`, { token: acmeAdmin })).status).toBe(401);
    acmeAdmin = (await signIn('acme', acmeCredentials.adminEmail, acmeCredentials.adminPassword)).accessToken;
    const retired = await rest('GET', `${server.baseUrl}/identity/api/acme/keys`, { token: acmeAdmin });
    expect(retired.body.keys.find((key: any) => key.kid === oldKid).state).toBe('SIGNING_KEY_STATE_RETIRED');
  });

  test('scheduler rotates a key older than the interval', async () => {
    const [oldKid] = await jwksKids('widgets');
    const tenantDb = new pg.Client(urlForDatabase(tenantDatabaseName(server.databasePrefix, 'widgets')));
    await tenantDb.connect();
    try {
      await tenantDb.query("UPDATE signing_keys SET created_at = now() - interval '31 days' WHERE kid = $1", [oldKid]);
      let kids: string[] = [oldKid];
      for (let attempt = 0; attempt < 40 && kids[0] === oldKid; attempt++) {
        await new Promise((done) => setTimeout(done, 250));
        const { rows } = await tenantDb.query('SELECT kid FROM signing_keys WHERE retired_at IS NULL');
        kids = rows.map((row) => row.kid);
      }
      expect(kids).toHaveLength(1);
      expect(kids[0]).not.toBe(oldKid);
      const { rows: audit } = await tenantDb.query(
        "SELECT actor, details FROM audit_log WHERE action = 'signing_key.rotated' AND target = $1",
        [kids[0]],
      );
      expect(audit).toHaveLength(1);
      expect(audit[0].actor).toBe('system:key-rotation');
      expect(audit[0].details.retiredKid).toBe(oldKid);
    } finally {
      await tenantDb.end();
    }
  });
});

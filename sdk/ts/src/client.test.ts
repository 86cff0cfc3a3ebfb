import { Code, ConnectError, type Transport } from '@connectrpc/connect';
import { createConnectTransport, createGrpcTransport } from '@connectrpc/connect-node';
import pg from 'pg';

import { urlForDatabase } from '../../../test/support/database.ts';
import { platformAdminToken, provisionTenant } from '../../../test/support/rest.ts';
import { startServer, type TestServer } from '../../../test/support/server.ts';
import { createTansuClient, type TansuClientOptions } from './client.ts';
import { errorMetadata, errorReason, retryAfterSeconds } from './errors.ts';
import { createMemoryTokenStore, type TokenPair, type TokenStore } from './token-store.ts';

// Access tokens of the short-lived tenants last one second. The server accepts a token up to
// five seconds past expiry (its clock tolerance), so after REJECTED_AFTER_MS it rejects it.
const SHORT_LIFETIME_SECONDS = 1;
const REJECTED_AFTER_MS = (SHORT_LIFETIME_SECONDS + 5) * 1000 + 1500;
const PASSWORD = 'one good passphrase';

let server: TestServer;
let adminToken: string;

beforeAll(async () => {
  server = await startServer();
  adminToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
}, 60_000);

afterAll(async () => {
  await server?.stop();
});

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
let emails = 0;
const newEmail = () => `user${++emails}-${Date.now()}@sdk.test`;

/** Creates a token store that records every write, to count refreshes. */
function recordingStore(): TokenStore & { writes: Array<TokenPair | undefined> } {
  const inner = createMemoryTokenStore();
  const writes: Array<TokenPair | undefined> = [];
  return {
    writes,
    get: () => inner.get(),
    set: (tokens) => {
      writes.push(tokens);
      return inner.set(tokens);
    },
  };
}

/**
 * Overrides a tenant's access token lifetime in its database, below the API's one-minute
 * minimum, so tests can wait past expiry. The caller then changes a setting through the API,
 * which drops the tenant's settings cache.
 */
async function setAccessTokenLifetime(databasePrefix: string, tenant: string, seconds: number): Promise<void> {
  const client = new pg.Client(urlForDatabase(`${databasePrefix}tenant_${tenant.replaceAll('-', '_')}`));
  await client.connect();
  try {
    await client.query(
      `INSERT INTO identity_settings (name, value, updated_at, updated_by)
       VALUES ('accessTokenLifetimeSeconds', $1::jsonb, now(), 'test')
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`,
      [JSON.stringify(seconds)],
    );
  } finally {
    await client.end();
  }
}

/**
 * Provisions a tenant and, signed in as its admin through the SDK, sets how many signups one
 * address may make per hour (which also reloads any setting written to its database).
 */
async function prepareTenant(
  id: string,
  transport: TansuClientOptions['transport'],
  options: { signupsPerHour: number; accessTokenLifetimeSeconds?: number },
): Promise<void> {
  const admin = await provisionTenant(server.baseUrl, adminToken, id);
  if (options.accessTokenLifetimeSeconds) {
    await setAccessTokenLifetime(server.databasePrefix, id, options.accessTokenLifetimeSeconds);
  }
  const client = createTansuClient({ baseUrl: server.baseUrl, tenant: id, transport });
  await client.signIn({ email: admin.adminEmail, password: admin.adminPassword });
  await client.settings.updateTenantSettings({
    settings: { signupsPerIpPerHour: options.signupsPerHour },
    updateMask: { paths: ['signups_per_ip_per_hour'] },
  });
  await client.signOut();
}

async function failure(call: Promise<unknown>): Promise<ConnectError> {
  const error = await call.then(
    () => undefined,
    (rejection: unknown) => rejection,
  );
  if (!(error instanceof ConnectError)) throw new Error(`expected a ConnectError, got ${String(error)}`);
  return error;
}

const transports: Array<[string, () => TansuClientOptions['transport']]> = [
  ['the default fetch-based Connect transport', () => 'connect'],
  ['Connect over HTTP/1.1 (connect-node)', () => createConnectTransport({ baseUrl: server.baseUrl, httpVersion: '1.1' })],
  ['gRPC over h2c (connect-node)', () => createGrpcTransport({ baseUrl: server.baseUrl })],
];

describe.each(transports)('createTansuClient with %s', (label, makeTransport) => {
  const slug = label.startsWith('gRPC') ? 'grpc' : label.includes('HTTP/1.1') ? 'connect-node' : 'connect-web';
  const tenant = `sdk-${slug}`;
  const shortTenant = `sdk-${slug}-short`;
  let transport: Transport | 'connect' | 'grpc-web' | undefined;

  const client = (tenantId: string, tokenStore?: TokenStore) =>
    createTansuClient({ baseUrl: server.baseUrl, tenant: tenantId, transport, tokenStore });

  beforeAll(async () => {
    transport = makeTransport();
    await prepareTenant(tenant, transport, { signupsPerHour: 1000 });
    await prepareTenant(shortTenant, transport, {
      signupsPerHour: 1000,
      accessTokenLifetimeSeconds: SHORT_LIFETIME_SECONDS,
    });
  }, 60_000);

  test('signUp stores tokens, calls send tenant header', async () => {
    const sdk = client(tenant);
    const email = newEmail();
    const signedUp = await sdk.signUp({ email, password: PASSWORD, displayName: 'Ada' });

    const stored = await sdk.tokenStore.get();
    expect(stored?.accessToken).toBe(signedUp.accessToken);
    expect(stored?.refreshToken).toBe(signedUp.refreshToken);

    // The request leaves `tenant` empty: the server takes it from the X-Tansu-Tenant header.
    const { user } = await sdk.auth.getCurrentUser({});
    expect(user?.email).toBe(email);
    expect(user?.displayName).toBe('Ada');
  });

  test('signIn stores the tokens', async () => {
    const email = newEmail();
    await client(tenant).signUp({ email, password: PASSWORD });

    const sdk = client(tenant);
    expect(await sdk.tokenStore.get()).toBeUndefined();
    const signedIn = await sdk.signIn({ email, password: PASSWORD });
    expect((await sdk.tokenStore.get())?.accessToken).toBe(signedIn.accessToken);
    expect((await sdk.auth.getCurrentUser({})).user?.email).toBe(email);
  });

  test('signed-out call fails UNAUTHENTICATED', async () => {
    const store = recordingStore();
    const error = await failure(client(tenant, store).auth.getCurrentUser({}));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorReason(error)).toBe('UNAUTHENTICATED');
    expect(store.writes).toEqual([]);
  });

  test('refreshes ahead of expiry once', async () => {
    const store = recordingStore();
    const sdk = client(shortTenant, store);
    const email = newEmail();
    const signedUp = await sdk.signUp({ email, password: PASSWORD });
    expect(signedUp.expiresIn).toBe(BigInt(SHORT_LIFETIME_SECONDS));

    await sleep(SHORT_LIFETIME_SECONDS * 1000 + 200);
    const [first, second] = await Promise.all([sdk.auth.getCurrentUser({}), sdk.auth.getCurrentUser({})]);

    expect(first.user?.email).toBe(email);
    expect(second.user?.email).toBe(email);
    expect(store.writes).toHaveLength(2); // sign-up, then one refresh
    expect(store.writes[1]?.refreshToken).not.toBe(signedUp.refreshToken);
    expect(store.writes[1]?.accessToken).not.toBe(signedUp.accessToken);
  });

  test('refreshes once after UNAUTHENTICATED, retries both', async () => {
    const store = recordingStore();
    const sdk = client(shortTenant, store);
    const email = newEmail();
    await sdk.signUp({ email, password: PASSWORD });

    // A client clock running behind: the SDK believes the token is fresh, the server does not.
    const signedUp = (await store.get())!;
    await store.set({ ...signedUp, expiresAt: Date.now() + 3_600_000, refreshAt: Date.now() + 3_600_000 });
    await sleep(REJECTED_AFTER_MS);

    const [first, second] = await Promise.all([sdk.auth.getCurrentUser({}), sdk.auth.getCurrentUser({})]);
    expect(first.user?.email).toBe(email);
    expect(second.user?.email).toBe(email);
    expect(store.writes).toHaveLength(3); // sign-up, the clock skew, one refresh
    expect(store.writes[2]?.refreshToken).not.toBe(signedUp.refreshToken);
  }, 30_000);

  test('rejected refresh clears tokens, keeps original error', async () => {
    const store = recordingStore();
    const sdk = client(tenant, store);
    await sdk.signUp({ email: newEmail(), password: PASSWORD });
    const signedUp = (await store.get())!;

    // Sign out elsewhere (revoking the refresh token), then call with a rejected access token.
    await client(tenant, createMemoryTokenStore(signedUp)).signOut();
    await store.set({ ...signedUp, accessToken: 'not.a.token' });

    const error = await failure(sdk.auth.getCurrentUser({}));
    expect(error.code).toBe(Code.Unauthenticated);
    expect(errorReason(error)).toBe('INVALID_TOKEN');
    expect(await store.get()).toBeUndefined();
    expect(store.writes.at(-1)).toBeUndefined();
  });

  test('signOut revokes and clears tokens', async () => {
    const sdk = client(tenant);
    await sdk.signUp({ email: newEmail(), password: PASSWORD });
    const signedUp = (await sdk.tokenStore.get())!;

    await sdk.signOut();
    expect(await sdk.tokenStore.get()).toBeUndefined();

    const error = await failure(sdk.auth.refresh({ refreshToken: signedUp.refreshToken }));
    expect(error.code).toBe(Code.Unauthenticated);
    // Signing out again with nothing stored does nothing.
    await sdk.signOut();
  });

  test('errorReason reads ErrorInfo of server errors', async () => {
    const sdk = client(tenant);
    const email = newEmail();
    await sdk.signUp({ email, password: PASSWORD });

    const duplicate = await failure(client(tenant).signUp({ email, password: PASSWORD }));
    expect(duplicate.code).toBe(Code.AlreadyExists);
    expect(errorReason(duplicate)).toBe('EMAIL_ALREADY_EXISTS');

    const mismatch = await failure(sdk.auth.getJwks({ tenant: 'another-tenant' }));
    expect(errorReason(mismatch)).toBe('TENANT_MISMATCH');
    expect(errorMetadata(mismatch).field).toBe('tenant');
    expect(retryAfterSeconds(mismatch)).toBeUndefined();
  });
});

describe('retryAfterSeconds', () => {
  test('reads RetryInfo of RATE_LIMITED signup', async () => {
    await prepareTenant('sdk-limited', 'connect', { signupsPerHour: 1 });
    const grpc = createGrpcTransport({ baseUrl: server.baseUrl });
    await createTansuClient({ baseUrl: server.baseUrl, tenant: 'sdk-limited' }).signUp({
      email: newEmail(),
      password: PASSWORD,
    });

    for (const transport of ['connect', grpc] as const) {
      const sdk = createTansuClient({ baseUrl: server.baseUrl, tenant: 'sdk-limited', transport });
      const error = await failure(sdk.signUp({ email: newEmail(), password: PASSWORD }));
      expect(error.code).toBe(Code.ResourceExhausted);
      expect(errorReason(error)).toBe('RATE_LIMITED');
      const seconds = retryAfterSeconds(error);
      expect(seconds).toBeGreaterThan(0);
      expect(seconds).toBeLessThanOrEqual(3600);
      expect(await sdk.tokenStore.get()).toBeUndefined();
    }
  });

  test('returns undefined without details', () => {
    expect(errorReason(new Error('plain'))).toBeUndefined();
    expect(retryAfterSeconds(new ConnectError('bare', Code.Unavailable))).toBeUndefined();
    expect(errorMetadata('a string')).toEqual({});
  });
});

describe('createTansuClient options', () => {
  test('rejects missing tenant or baseUrl', () => {
    expect(() => createTansuClient({ baseUrl: 'http://127.0.0.1:1', tenant: '' })).toThrow(/missing tenant/);
    expect(() => createTansuClient({ tenant: 'acme' })).toThrow(/missing baseUrl/);
  });
});

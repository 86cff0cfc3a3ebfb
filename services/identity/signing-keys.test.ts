import { randomBytes } from 'node:crypto';

import { calculateJwkThumbprint, jwtVerify, SignJWT } from 'jose';

import { createMigratedDatabase } from '../../test/support/database.ts';
import { createSecretBox } from '../core/secret-box.ts';
import { createKeyStore, generateSigningKey, type KeyStoreOptions } from './signing-keys.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

const secretBox = createSecretBox(randomBytes(32));
const GRACE_SECONDS = 60;

function options(overrides: Partial<KeyStoreOptions> = {}): KeyStoreOptions {
  return {
    secretBox,
    associatedDataPrefix: 'tenant:acme',
    rotationGraceSeconds: () => GRACE_SECONDS,
    ...overrides,
  };
}

function secondsFromNow(seconds: number): Date {
  return new Date(Date.now() + seconds * 1000);
}

describe('generateSigningKey', () => {
  test('kid is the RFC 7638 thumbprint', async () => {
    const key = await generateSigningKey();
    const { kid: _kid, alg: _alg, use: _use, ...bare } = key.publicJwk;
    expect(key.kid).toBe(await calculateJwkThumbprint(bare, 'sha256'));
    expect(key.publicJwk).toMatchObject({ kty: 'RSA', kid: key.kid, alg: 'RS256', use: 'sig', e: 'AQAB' });
  });

  test('public JWK has no private members', async () => {
    const key = await generateSigningKey();
    for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) {
      expect(Object.keys(key.publicJwk)).not.toContain(member);
    }
    expect(key.privatePem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    // A 2048-bit modulus is 256 bytes.
    expect(Buffer.from(key.publicJwk.n!, 'base64url').length).toBe(256);
  });
});

describe('createKeyStore', () => {
  let database: Database;
  beforeEach(async () => {
    database = await createMigratedDatabase('tenant');
  });
  afterEach(async () => {
    await database.drop();
  });

  test('ensureKey creates one sealed key', async () => {
    const store = createKeyStore(database.pool, options());
    const kid = await store.ensureKey();
    expect(await store.ensureKey()).toBe(kid);

    const { rows } = await database.pool.query('SELECT kid, private_key_encrypted FROM signing_keys');
    expect(rows).toHaveLength(1);
    expect(rows[0].kid).toBe(kid);
    expect(rows[0].private_key_encrypted).toMatch(/^v1\./);
    expect(rows[0].private_key_encrypted).not.toContain('PRIVATE KEY');
  });

  test('concurrent ensureKey leaves one active key', async () => {
    const stores = [1, 2, 3].map(() => createKeyStore(database.pool, options()));
    const kids = await Promise.all(stores.map((store) => store.ensureKey()));
    expect(new Set(kids).size).toBe(1);
    const { rows } = await database.pool.query('SELECT count(*)::int AS n FROM signing_keys');
    expect(rows[0].n).toBe(1);
  });

  test('active key signs tokens its public key verifies', async () => {
    const store = createKeyStore(database.pool, options());
    await store.ensureKey();
    const { kid, privateKey } = await store.activeKey();
    const token = await new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid }).sign(privateKey);

    const publicKey = await store.verificationKey(kid);
    expect(publicKey).toBeDefined();
    const { protectedHeader } = await jwtVerify(token, publicKey!, { algorithms: ['RS256'] });
    expect(protectedHeader.kid).toBe(kid);
  });

  test('activeKey without a key throws', async () => {
    const store = createKeyStore(database.pool, options());
    await expect(store.activeKey()).rejects.toThrow(/no active signing key in signing_keys/);
  });

  test('key sealed for another tenant fails', async () => {
    await createKeyStore(database.pool, options()).ensureKey();
    const other = createKeyStore(database.pool, options({ associatedDataPrefix: 'tenant:globex' }));
    await expect(other.activeKey()).rejects.toThrow(/failed to decrypt/);
  });

  test('rotation publishes old key only during grace', async () => {
    const store = createKeyStore(database.pool, options());
    const oldKid = await store.ensureKey();
    const newKid = await store.rotate();
    expect(newKid).not.toBe(oldKid);
    expect((await store.activeKey()).kid).toBe(newKid);

    const duringGrace = await store.publishedKeys(secondsFromNow(GRACE_SECONDS - 10));
    expect(duringGrace.map((jwk) => jwk.kid)).toEqual([newKid, oldKid]);
    expect(await store.verificationKey(oldKid, secondsFromNow(GRACE_SECONDS - 10))).toBeDefined();

    const afterGrace = await store.publishedKeys(secondsFromNow(GRACE_SECONDS + 10));
    expect(afterGrace.map((jwk) => jwk.kid)).toEqual([newKid]);
    expect(await store.verificationKey(oldKid, secondsFromNow(GRACE_SECONDS + 10))).toBeUndefined();
    expect(await store.verificationKey(newKid, secondsFromNow(GRACE_SECONDS + 10))).toBeDefined();
  });

  test('grace is read on every call', async () => {
    let grace = 3600;
    const store = createKeyStore(database.pool, options({ rotationGraceSeconds: () => grace }));
    const oldKid = await store.ensureKey();
    await store.rotate();
    expect((await store.publishedKeys()).map((jwk) => jwk.kid)).toContain(oldKid);
    grace = 0;
    expect((await store.publishedKeys()).map((jwk) => jwk.kid)).not.toContain(oldKid);
  });

  test('second rotation retires the first successor', async () => {
    const store = createKeyStore(database.pool, options());
    const first = await store.ensureKey();
    const second = await store.rotate();
    const third = await store.rotate();
    const { rows } = await database.pool.query(
      'SELECT kid FROM signing_keys WHERE retired_at IS NULL',
    );
    expect(rows.map((row) => row.kid)).toEqual([third]);
    const published = (await store.publishedKeys()).map((jwk) => jwk.kid);
    expect(published).toEqual([third, second, first]);
  });

  test('rotation elsewhere is seen via unknown kid', async () => {
    const here = createKeyStore(database.pool, options({ unknownKidReloadMilliseconds: 0 }));
    const elsewhere = createKeyStore(database.pool, options());
    const oldKid = await here.ensureKey();
    const newKid = await elsewhere.rotate();

    // The cache still names the old key as active until it expires.
    expect((await here.activeKey()).kid).toBe(oldKid);
    expect(await here.verificationKey(newKid)).toBeDefined();
    expect((await here.activeKey()).kid).toBe(newKid);
  });

  test('unknown kid reload is rate limited', async () => {
    const here = createKeyStore(database.pool, options({ unknownKidReloadMilliseconds: 60_000 }));
    const elsewhere = createKeyStore(database.pool, options());
    await here.ensureKey();
    const newKid = await elsewhere.rotate();
    expect(await here.verificationKey(newKid)).toBeUndefined();
    here.invalidate();
    expect(await here.verificationKey(newKid)).toBeDefined();
  });

  test('platform table is supported', async () => {
    const platform = await createMigratedDatabase('platform');
    try {
      const store = createKeyStore(
        platform.pool,
        options({ table: 'platform_signing_keys', associatedDataPrefix: 'platform' }),
      );
      const kid = await store.ensureKey();
      expect((await store.publishedKeys()).map((jwk) => jwk.kid)).toEqual([kid]);
    } finally {
      await platform.drop();
    }
  });

  test('unsupported table name is rejected', () => {
    expect(() =>
      createKeyStore(database.pool, options({ table: 'users; DROP TABLE users' as 'signing_keys' })),
    ).toThrow(/signing key table must be one of/);
  });
});

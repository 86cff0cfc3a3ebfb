import {
  calculateJwkThumbprint,
  exportJWK,
  exportPKCS8,
  generateKeyPair,
  importJWK,
  importPKCS8,
  type CryptoKey,
  type JWK,
} from 'jose';
import type pg from 'pg';

import type { SecretBox } from '../core/secret-box.ts';

/** The only signing algorithm Tansu issues and accepts. */
export const SIGNING_ALGORITHM = 'RS256';

/** How long a key store serves keys from memory before it reads the table again, in ms. */
export const KEY_CACHE_MILLISECONDS = 5 * 60 * 1000;

// A token with a kid the cache does not contain makes the store read the table again, because
// another replica may have rotated. Such reads happen at most this often, so tokens with made-up
// kids do not cost one query each.
const UNKNOWN_KID_RELOAD_MILLISECONDS = 5 * 1000;

const TABLES = ['signing_keys', 'platform_signing_keys'] as const;

/** Table that contains the keys: a tenant database's or the platform database's. */
export type SigningKeyTable = (typeof TABLES)[number];

/** A freshly generated RSA key pair. */
export interface GeneratedSigningKey {
  /** RFC 7638 JWK thumbprint (SHA-256, base64url) of the public key. */
  kid: string;
  /** Public key as a JWK with `kid`, `alg: RS256` and `use: sig`, as published in the JWKS. */
  publicJwk: JWK;
  /** Private key as PKCS#8 PEM. */
  privatePem: string;
}

/** The key that signs new tokens. */
export interface ActiveSigningKey {
  kid: string;
  privateKey: CryptoKey;
}

/** Options of createKeyStore. */
export interface KeyStoreOptions {
  /** Seals private keys at rest. */
  secretBox: SecretBox;
  /**
   * Start of the associated data that binds each sealed private key to its owner, such as
   * `tenant:acme` or `platform`. The store appends `:signing-key:<kid>`.
   */
  associatedDataPrefix: string;
  /** Defaults to `signing_keys`, the table of a tenant database. */
  table?: SigningKeyTable;
  /**
   * How long a retired key stays published and accepted, in seconds. Read on every call, so a
   * settings change applies at once. It should exceed the access token lifetime plus the JWKS
   * cache time, or tokens signed just before a rotation stop verifying early.
   */
  rotationGraceSeconds: () => number;
  /** How long keys are served from memory, in ms. Defaults to KEY_CACHE_MILLISECONDS. */
  cacheMilliseconds?: number;
  /**
   * Minimum time between two reads of the table caused by unknown kids, in ms. Defaults to
   * 5 seconds.
   */
  unknownKidReloadMilliseconds?: number;
}

/** Signing keys of one tenant (or of the platform), read from its database and cached. */
export interface SigningKeyStore {
  /** Creates a key when there is no active one. Returns the active key's kid. */
  ensureKey(): Promise<string>;
  /** Returns the newest active key. Throws when the table has none (call ensureKey first). */
  activeKey(): Promise<ActiveSigningKey>;
  /**
   * Returns the public JWKs to publish at `now` (default: the current time): the active key
   * and every key retired less than the rotation grace before `now`.
   */
  publishedKeys(now?: Date): Promise<JWK[]>;
  /**
   * Creates a new key that signs from now on and retires the previous one, which stays
   * published for the rotation grace. Takes effect in this process at once and in other
   * processes when their cache expires. Returns the new kid.
   */
  rotate(): Promise<string>;
  /** Returns the public key for `kid` if that key is published at `now`, else undefined. */
  verificationKey(kid: string, now?: Date): Promise<CryptoKey | undefined>;
  /** Drops the cached keys, so the next call reads the table. */
  invalidate(): void;
}

/**
 * Generates an RS256 key pair (RSA 2048). The kid is the key's RFC 7638 thumbprint, so it is
 * derived from the key itself and two keys never share one.
 */
export async function generateSigningKey(): Promise<GeneratedSigningKey> {
  const { publicKey, privateKey } = await generateKeyPair(SIGNING_ALGORITHM, {
    modulusLength: 2048,
    extractable: true,
  });
  const jwk = await exportJWK(publicKey);
  const kid = await calculateJwkThumbprint(jwk, 'sha256');
  return {
    kid,
    publicJwk: { ...jwk, kid, alg: SIGNING_ALGORITHM, use: 'sig' },
    privatePem: await exportPKCS8(privateKey),
  };
}

interface StoredKey {
  kid: string;
  publicJwk: JWK;
  privateKeyEncrypted: string;
  createdAt: Date;
  retiredAt: Date | null;
}

interface CachedKeys {
  loadedAt: number;
  /** Newest first. */
  keys: StoredKey[];
  active?: ActiveSigningKey;
  publicKeys: Map<string, Promise<CryptoKey>>;
}

/**
 * Creates the key store over `pool`. Keys are cached for five minutes (KEY_CACHE_MILLISECONDS),
 * the same time clients may cache the JWKS.
 *
 * Retirement times come from the database clock (`now()` at rotation) and are compared with
 * this process's clock, so a skew between the two shifts the end of the grace by that much.
 */
export function createKeyStore(pool: Pick<pg.Pool, 'query' | 'connect'>, options: KeyStoreOptions): SigningKeyStore {
  const table = options.table ?? 'signing_keys';
  if (!TABLES.includes(table)) {
    throw new Error(`signing key table must be one of ${TABLES.join(', ')}, got ${table}`);
  }
  const cacheMilliseconds = options.cacheMilliseconds ?? KEY_CACHE_MILLISECONDS;
  const unknownKidReloadMilliseconds =
    options.unknownKidReloadMilliseconds ?? UNKNOWN_KID_RELOAD_MILLISECONDS;
  const lockName = `tansu:${table}`;
  let cache: CachedKeys | undefined;
  let loading: Promise<CachedKeys> | undefined;

  const associatedData = (kid: string) => `${options.associatedDataPrefix}:signing-key:${kid}`;

  async function load(): Promise<CachedKeys> {
    const { rows } = await pool.query(
      `SELECT kid, public_jwk, private_key_encrypted, created_at, retired_at
         FROM ${table} ORDER BY created_at DESC, kid`,
    );
    const keys: StoredKey[] = rows.map((row) => ({
      kid: row.kid,
      publicJwk: row.public_jwk,
      privateKeyEncrypted: row.private_key_encrypted,
      createdAt: row.created_at,
      retiredAt: row.retired_at,
    }));

    const activeRow = keys.find((key) => key.retiredAt === null);
    let active: ActiveSigningKey | undefined;
    if (activeRow) {
      const pem = options.secretBox.decrypt(activeRow.privateKeyEncrypted, associatedData(activeRow.kid));
      active = { kid: activeRow.kid, privateKey: await importPKCS8(pem, SIGNING_ALGORITHM) };
    }
    return { loadedAt: Date.now(), keys, active, publicKeys: new Map() };
  }

  // Concurrent readers share one read of the table. After a write, `fresh` starts a new read,
  // because a read already in flight may predate the write. Each read gets a sequence number,
  // and an older read never replaces the result of a newer one.
  let nextSequence = 0;
  let cachedSequence = -1;
  async function reload(fresh = false): Promise<CachedKeys> {
    const sequence = nextSequence++;
    let read: Promise<CachedKeys>;
    if (fresh || !loading) {
      read = load();
      loading = read;
      read.finally(() => {
        if (loading === read) loading = undefined;
      }).catch(() => undefined);
    } else {
      read = loading;
    }

    const loaded = await read;
    if (sequence > cachedSequence) {
      cache = loaded;
      cachedSequence = sequence;
    }
    return loaded;
  }

  async function current(): Promise<CachedKeys> {
    if (cache && Date.now() - cache.loadedAt < cacheMilliseconds) return cache;
    return reload();
  }

  function isPublished(key: StoredKey, now: Date): boolean {
    if (key.retiredAt === null) return true;
    return key.retiredAt.getTime() + options.rotationGraceSeconds() * 1000 > now.getTime();
  }

  // Runs `work` in a transaction that holds an advisory lock per table, so two replicas
  // creating or rotating keys at the same moment do not leave two active keys.
  async function withKeyLock<T>(work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const client = await pool.connect();
    try {
      await client.query('BEGIN');
      await client.query('SELECT pg_advisory_xact_lock(hashtextextended($1, 0))', [lockName]);
      const result = await work(client);
      await client.query('COMMIT');
      return result;
    } catch (error) {
      await client.query('ROLLBACK').catch(() => undefined);
      throw error;
    } finally {
      client.release();
    }
  }

  async function insertKey(client: pg.PoolClient, key: GeneratedSigningKey): Promise<void> {
    await client.query(
      `INSERT INTO ${table} (kid, public_jwk, private_key_encrypted) VALUES ($1, $2, $3)`,
      [key.kid, JSON.stringify(key.publicJwk), options.secretBox.encrypt(key.privatePem, associatedData(key.kid))],
    );
  }

  return {
    async ensureKey() {
      const cached = await current();
      if (cached.active) return cached.active.kid;

      // Generating an RSA key takes tens of milliseconds, so it happens before the lock.
      const candidate = await generateSigningKey();
      const kid = await withKeyLock(async (client) => {
        const { rows } = await client.query(
          `SELECT kid FROM ${table} WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1`,
        );
        if (rows.length > 0) return rows[0].kid as string;
        await insertKey(client, candidate);
        return candidate.kid;
      });
      await reload(true);
      return kid;
    },

    async activeKey() {
      const cached = await current();
      if (!cached.active) {
        throw new Error(`no active signing key in ${table}; call ensureKey() first`);
      }
      return cached.active;
    },

    async publishedKeys(now = new Date()) {
      const cached = await current();
      return cached.keys.filter((key) => isPublished(key, now)).map((key) => key.publicJwk);
    },

    async rotate() {
      const next = await generateSigningKey();
      await withKeyLock(async (client) => {
        await insertKey(client, next);
        await client.query(
          `UPDATE ${table} SET retired_at = now() WHERE retired_at IS NULL AND kid <> $1`,
          [next.kid],
        );
      });
      await reload(true);
      return next.kid;
    },

    async verificationKey(kid, now = new Date()) {
      let cached = await current();
      let key = cached.keys.find((candidate) => candidate.kid === kid);
      if (!key && Date.now() - cached.loadedAt >= unknownKidReloadMilliseconds) {
        cached = await reload();
        key = cached.keys.find((candidate) => candidate.kid === kid);
      }
      if (!key || !isPublished(key, now)) return undefined;

      let imported = cached.publicKeys.get(kid);
      if (!imported) {
        imported = importJWK(key.publicJwk, SIGNING_ALGORITHM) as Promise<CryptoKey>;
        cached.publicKeys.set(kid, imported);
      }
      return imported;
    },

    invalidate() {
      cache = undefined;
    },
  };
}

import type pg from 'pg';

import { domainError } from '../core/errors.ts';
import type { SecretBox } from '../core/secret-box.ts';
import { poolHandle, type Database } from '../db/pool-handle.ts';
import type { TenantPools } from '../db/tenant-pools.ts';
import { DEFAULT_IDENTITY_SETTINGS, loadIdentitySettings, type IdentitySettings } from '../identity/settings.ts';
import { createKeyStore, type SigningKeyStore } from '../identity/signing-keys.ts';
import { createTokenStatusCache, type TokenStatusCache } from '../identity/token-status.ts';
import { assertTenantId } from './tenant-id.ts';

/** A tenant's row in the platform database. */
export interface TenantRecord {
  id: string;
  displayName: string;
  state: 'provisioning' | 'active';
  databaseName: string;
  createdAt: Date;
}

/** One tenant and what it owns: its database, its signing keys and its settings. */
export interface TenantContext {
  readonly id: string;
  readonly record: TenantRecord;
  /** The tenant database, through the pool LRU. */
  readonly db: Database;
  /** Token issuer, `<public base URL>/identity/<id>`. */
  readonly issuer: string;
  readonly keys: SigningKeyStore;
  /** Whether access tokens are revoked or belong to a disabled subject, cached for a few seconds. */
  readonly tokenStatus: TokenStatusCache;
  /** Effective identity settings, cached for a few seconds. */
  settings(): Promise<IdentitySettings>;
  /** Drops cached settings so the next read sees a change at once. */
  invalidateSettings(): void;
}

/** Looks tenants up by id and keeps one TenantContext per tenant. */
export interface TenantRegistry {
  /** Returns an active tenant; INVALID_ARGUMENT for a malformed id, NOT_FOUND for an unknown one. */
  get(id: string, field?: string): Promise<TenantContext>;
  /** Forgets a tenant, after deletion. */
  forget(id: string): void;
  /** Drops the cached settings of every tenant, after a change of platform settings. */
  invalidateAllSettings(): void;
}

const SETTINGS_CACHE_MS = 5_000;
const RECHECK_MS = 30_000;

/** Creates the registry over the platform database and the tenant pool LRU. */
export function createTenantRegistry(options: {
  platformDb: pg.Pool;
  pools: TenantPools;
  secretBox: SecretBox;
  publicBaseUrl: () => string;
}): TenantRegistry {
  // Entries are re-checked against the platform database after RECHECK_MS, so a tenant
  // deleted through another replica stops being served here within that time.
  const contexts = new Map<string, { context: TenantContext; checkedAt: number }>();

  async function readRecord(id: string): Promise<TenantRecord | undefined> {
    const { rows } = await options.platformDb.query(
      'SELECT id, display_name, state, database_name, created_at FROM tenants WHERE id = $1',
      [id],
    );
    const row = rows[0];
    if (!row) return undefined;
    return {
      id: row.id,
      displayName: row.display_name,
      state: row.state,
      databaseName: row.database_name,
      createdAt: row.created_at,
    };
  }

  function buildContext(record: TenantRecord): TenantContext {
    const db = poolHandle(() => options.pools.get(record.databaseName));
    let cachedSettings: { value: IdentitySettings; at: number } | undefined;
    // The key store reads the rotation grace synchronously, so it gets the last loaded value
    // even while the cache is stale, and a stale read starts a reload in the background.
    let lastSettings: IdentitySettings | undefined;
    const settings = async () => {
      if (cachedSettings && Date.now() - cachedSettings.at < SETTINGS_CACHE_MS) return cachedSettings.value;
      const { settings: value } = await loadIdentitySettings(options.platformDb, db);
      cachedSettings = { value, at: Date.now() };
      lastSettings = value;
      return value;
    };
    const rotationGraceSeconds = () => {
      if (!cachedSettings || Date.now() - cachedSettings.at >= SETTINGS_CACHE_MS) void settings().catch(() => undefined);
      return (lastSettings ?? DEFAULT_IDENTITY_SETTINGS).keyRotationGraceDays * 86400;
    };
    return {
      id: record.id,
      record,
      db,
      get issuer() {
        return `${options.publicBaseUrl()}/identity/${record.id}`;
      },
      keys: createKeyStore(db, {
        secretBox: options.secretBox,
        associatedDataPrefix: `tenant:${record.id}`,
        table: 'signing_keys',
        rotationGraceSeconds,
      }),
      tokenStatus: createTokenStatusCache(db),
      settings,
      invalidateSettings() {
        cachedSettings = undefined;
      },
    };
  }

  return {
    async get(id, field = 'tenant') {
      assertTenantId(id, field);
      const cached = contexts.get(id);
      if (cached && Date.now() - cached.checkedAt < RECHECK_MS) return cached.context;
      const record = await readRecord(id);
      if (!record || record.state !== 'active') {
        contexts.delete(id);
        throw domainError('TENANT_NOT_FOUND', `tenant "${id}" does not exist`, { metadata: { tenant: id } });
      }
      const context = cached?.context ?? buildContext(record);
      contexts.set(id, { context, checkedAt: Date.now() });
      return context;
    },
    forget(id) {
      contexts.delete(id);
    },
    invalidateAllSettings() {
      for (const { context } of contexts.values()) context.invalidateSettings();
    },
  };
}

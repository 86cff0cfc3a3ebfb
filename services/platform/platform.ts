import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import pg from 'pg';

import { databaseErrorSummary, POOL_TIMEOUTS } from '../core/database-errors.ts';
import type { Logger } from '../core/logger.ts';
import { createSecretBox, loadMasterKey, type SecretBox } from '../core/secret-box.ts';
import { applyMigrations, type MigrationSet } from '../db/migrate.ts';
import { poolHandle } from '../db/pool-handle.ts';
import { createFunctionsHost, type FunctionsHost } from '../functions/functions-host.ts';
import { createTenantPools, type TenantPools } from '../db/tenant-pools.ts';
import { hashPassword, verifyPassword } from '../identity/passwords.ts';
import { createKeyStore, type SigningKeyStore } from '../identity/signing-keys.ts';
import type { Config } from '../server/config.ts';
import { cleanUpAbandonedTenants, PROVISIONING_STEPS, type ProvisioningDeps, type ProvisioningStep } from './provisioning.ts';
import { platformDatabaseName, templateDatabaseName } from './tenant-id.ts';
import { createTenantRegistry, type TenantRegistry } from './tenant-registry.ts';

/** Everything shared by the platform's RPC handlers and background work. */
export interface Platform {
  config: Config;
  logger: Logger;
  platformDb: pg.Pool;
  pools: TenantPools;
  tenants: TenantRegistry;
  secretBox: SecretBox;
  /** Keys that sign platform admin tokens. */
  platformKeys: SigningKeyStore;
  /** Issuer of platform admin tokens, `<public base URL>/identity/platform`. */
  platformIssuer(): string;
  /** Public base URL; known once the server listens. */
  publicBaseUrl(): string;
  setPublicBaseUrl(url: string): void;
  provisioning: ProvisioningDeps;
  /** Tenant function runtime and what executions need; pass it to `invokeFunction`. */
  functions: FunctionsHost;
  /** Stops the function runtime, then closes every database pool. */
  close(): Promise<void>;
}

function databaseUrl(serverUrl: string, databaseName: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${databaseName}`;
  return url.toString();
}

async function ensureDatabase(serverUrl: string, name: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl(serverUrl, 'postgres') });
  await client.connect();
  try {
    const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await client.query(`CREATE DATABASE ${name}`).catch((error: { code?: string }) => {
        // 42P04: another server created it at the same moment.
        if (error.code !== '42P04') throw error;
      });
    }
  } finally {
    await client.end();
  }
}

async function migrateDatabase(serverUrl: string, name: string, set: MigrationSet): Promise<string[]> {
  const client = new pg.Client({ connectionString: databaseUrl(serverUrl, name) });
  await client.connect();
  try {
    return await applyMigrations(client, set);
  } finally {
    await client.end();
  }
}

function parseFailureStep(value: string | undefined): ProvisioningStep | undefined {
  if (!value) return undefined;
  if (!(PROVISIONING_STEPS as readonly string[]).includes(value)) {
    throw new Error(`TANSU_TEST_FAIL_PROVISION_AT must be one of ${PROVISIONING_STEPS.join(', ')}, got "${value}"`);
  }
  return value as ProvisioningStep;
}

/**
 * Opens the platform on a PostgreSQL server: creates and migrates the platform database and
 * the tenant template, migrates every tenant database, removes what interrupted provisionings
 * left, makes sure a platform signing key and the configured platform admin exist.
 */
export async function openPlatform(config: Config, serverUrl: string, logger: Logger): Promise<Platform> {
  const prefix = config.databasePrefix;
  const platformName = platformDatabaseName(prefix);
  const templateName = templateDatabaseName(prefix);
  await ensureDatabase(serverUrl, platformName);
  await migrateDatabase(serverUrl, platformName, 'platform');
  await ensureDatabase(serverUrl, templateName);
  await migrateDatabase(serverUrl, templateName, 'tenant');

  const platformDb = new pg.Pool({ connectionString: databaseUrl(serverUrl, platformName), max: 10, ...POOL_TIMEOUTS });
  // An idle connection fails when PostgreSQL stops or restarts; the pool opens a new one on the
  // next query. Only the message and code are logged, because the error carries the client.
  platformDb.on('error', (error) => logger.warn({ err: databaseErrorSummary(error) }, 'idle platform connection closed'));

  mkdirSync(config.dataDir, { recursive: true });
  const secretBox = createSecretBox(
    loadMasterKey({ env: config.masterKey ? { TANSU_MASTER_KEY: config.masterKey } : {}, dataDir: config.dataDir }),
  );
  const pools = createTenantPools({
    urlFor: (name) => databaseUrl(serverUrl, name),
    poolSize: config.tenantPoolSize,
    maxConnections: config.maxTenantConnections,
    logger,
  });
  let publicBaseUrl = config.publicBaseUrl;
  const tenants = createTenantRegistry({ platformDb, pools, secretBox, publicBaseUrl: () => publicBaseUrl });
  const platformKeys = createKeyStore(poolHandle(() => platformDb), {
    secretBox,
    associatedDataPrefix: 'platform',
    table: 'platform_signing_keys',
    rotationGraceSeconds: () => 7 * 86400,
  });
  await platformKeys.ensureKey();

  const provisioning: ProvisioningDeps = {
    platformDb,
    pools,
    registry: tenants,
    secretBox,
    databasePrefix: prefix,
    urlFor: (name) => databaseUrl(serverUrl, name),
    logger,
    failAfterStep: parseFailureStep(process.env.TANSU_TEST_FAIL_PROVISION_AT),
  };
  await cleanUpAbandonedTenants(provisioning);

  const { rows } = await platformDb.query<{ database_name: string }>(
    "SELECT database_name FROM tenants WHERE state = 'active' ORDER BY id",
  );
  for (const row of rows) {
    const applied = await migrateDatabase(serverUrl, row.database_name, 'tenant');
    if (applied.length > 0) logger.info({ database: row.database_name, applied }, 'tenant database migrated');
  }

  await ensurePlatformAdmin(config, platformDb, logger);
  const functions = createFunctionsHost({ secretBox, logger });

  return {
    config,
    logger,
    platformDb,
    pools,
    tenants,
    secretBox,
    platformKeys,
    platformIssuer: () => `${publicBaseUrl}/identity/platform`,
    publicBaseUrl: () => publicBaseUrl,
    setPublicBaseUrl(url) {
      publicBaseUrl = url.replace(/\/+$/, '');
    },
    provisioning,
    functions,
    async close() {
      await functions.close();
      await pools.closeAll();
      await platformDb.end();
    },
  };
}

/** File in the data directory that keeps a generated platform admin password. */
export function adminPasswordFile(dataDir: string): string {
  return join(dataDir, 'admin-password');
}

/**
 * Ensures the configured platform admin exists. With TANSU_ADMIN_PASSWORD set, that password
 * is made to work. Without it, a new admin gets a random password, which is printed once and
 * stored with mode 0600 in the data directory. There is no built-in default password.
 */
async function ensurePlatformAdmin(config: Config, platformDb: pg.Pool, logger: Logger): Promise<void> {
  const { rows } = await platformDb.query('SELECT password_hash FROM platform_admins WHERE email = $1', [config.adminEmail]);
  const existing = rows[0] as { password_hash: string } | undefined;

  if (config.adminPassword) {
    if (existing && (await verifyPassword(existing.password_hash, config.adminPassword))) return;
    const hash = await hashPassword(config.adminPassword);
    await platformDb.query(
      `INSERT INTO platform_admins (email, password_hash) VALUES ($1, $2)
       ON CONFLICT (email) DO UPDATE SET password_hash = EXCLUDED.password_hash, failed_attempts = 0, locked_until = NULL`,
      [config.adminEmail, hash],
    );
    logger.info({ email: config.adminEmail }, 'platform admin password set from TANSU_ADMIN_PASSWORD');
    return;
  }
  if (existing) return;

  const password = randomBytes(18).toString('base64url');
  await platformDb.query(
    'INSERT INTO platform_admins (email, password_hash) VALUES ($1, $2) ON CONFLICT (email) DO NOTHING',
    [config.adminEmail, await hashPassword(password)],
  );
  const file = adminPasswordFile(config.dataDir);
  writeFileSync(file, `${password}\n`, { mode: 0o600 });
  process.stdout.write(
    `\nGenerated the platform admin password for ${config.adminEmail} (shown once, also stored in ${file}):\n  ${password}\n\n`,
  );
}

/** Reads a password stored in the data directory, if any. */
export function readStoredPassword(file: string): string | undefined {
  return existsSync(file) ? readFileSync(file, 'utf8').trim() : undefined;
}

import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { domainError } from '../core/errors.ts';
import type { Logger } from '../core/logger.ts';
import type { SecretBox } from '../core/secret-box.ts';
import { applyMigrations } from '../db/migrate.ts';
import { inTransaction, poolHandle } from '../db/pool-handle.ts';
import type { TenantPools } from '../db/tenant-pools.ts';
import { hashPassword } from '../identity/passwords.ts';
import { createKeyStore } from '../identity/signing-keys.ts';
import { assertTenantId, templateDatabaseName, tenantDatabaseName } from './tenant-id.ts';
import type { TenantRecord, TenantRegistry } from './tenant-registry.ts';

/** Dependencies of provisioning on the running platform. */
export interface ProvisioningDeps {
  platformDb: pg.Pool;
  pools: TenantPools;
  registry: TenantRegistry;
  secretBox: SecretBox;
  databasePrefix: string;
  /** Connection URL of a database on the cluster. */
  urlFor(databaseName: string): string;
  logger: Logger;
  /**
   * Test hook: the name of a provisioning step after which to fail, to prove that every
   * failure leaves nothing behind. Set from TANSU_TEST_FAIL_PROVISION_AT; never in production.
   */
  failAfterStep?: ProvisioningStep;
  /** Background work to start on a new tenant and to stop before a tenant's database is dropped. */
  hooks?: {
    afterProvision?(id: string): Promise<void>;
    beforeDelete?(id: string): Promise<void>;
  };
}

/** Steps of provisioning in order; a failure after any of them is rolled back. */
export const PROVISIONING_STEPS = ['record', 'database', 'migrations', 'admin', 'signing-key', 'activate'] as const;
/** One provisioning step. */
export type ProvisioningStep = (typeof PROVISIONING_STEPS)[number];

/** Result of provisioning: the tenant and its admin's one-time password. */
export interface ProvisionedTenant {
  tenant: TenantRecord;
  adminEmail: string;
  adminPassword: string;
}

/** Advisory lock key held by the session that provisions a tenant; see cleanUpAbandonedTenants. */
function provisioningLockKey(id: string): string {
  return `tansu.provision:${id}`;
}

/** Runs SQL on a short-lived connection to the cluster's maintenance database. */
async function withClusterClient<T>(deps: ProvisioningDeps, work: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: deps.urlFor('postgres') });
  await client.connect();
  try {
    return await work(client);
  } finally {
    await client.end();
  }
}

/**
 * Provisions a tenant: records it as `provisioning`, creates its database from the migrated
 * template, brings the schema up to date, seeds the tenant admin and a signing key, then marks
 * it `active`. Any failure drops the database and deletes the record before the error is
 * returned. The platform session holds an advisory lock on the tenant id throughout, so that
 * after a crash the next start can tell an abandoned provisioning from one still running.
 */
export async function provisionTenant(
  deps: ProvisioningDeps,
  request: { id: string; displayName: string },
): Promise<ProvisionedTenant> {
  assertTenantId(request.id);
  const id = request.id;
  const databaseName = tenantDatabaseName(deps.databasePrefix, id);
  const displayName = request.displayName.trim() || id;
  if (displayName.length > 200) {
    throw domainError('INVALID_ARGUMENT', 'display_name must be at most 200 characters', {
      metadata: { field: 'display_name' },
    });
  }
  const checkpoint = (step: ProvisioningStep) => {
    if (deps.failAfterStep === step) throw new Error(`injected failure after provisioning step "${step}"`);
  };

  const lockClient = await deps.platformDb.connect();
  let recorded = false;
  let databaseCreated = false;
  try {
    await lockClient.query('SELECT pg_advisory_lock(hashtext($1))', [provisioningLockKey(id)]);
    const inserted = await lockClient.query(
      `INSERT INTO tenants (id, display_name, state, database_name) VALUES ($1, $2, 'provisioning', $3)
       ON CONFLICT (id) DO NOTHING RETURNING created_at`,
      [id, displayName, databaseName],
    );
    if (inserted.rowCount === 0) {
      throw domainError('TENANT_ALREADY_EXISTS', `tenant "${id}" already exists; choose another id`, {
        metadata: { tenant: id },
      });
    }
    recorded = true;
    checkpoint('record');

    await withClusterClient(deps, (client) =>
      client.query(`CREATE DATABASE ${databaseName} TEMPLATE ${templateDatabaseName(deps.databasePrefix)}`),
    );
    databaseCreated = true;
    checkpoint('database');

    const tenantPool = new pg.Pool({ connectionString: deps.urlFor(databaseName), max: 2 });
    // A rollback's DROP DATABASE ... WITH (FORCE) may end a session of this pool that is still
    // closing; without a listener that error would crash the process.
    tenantPool.on('error', (error) => deps.logger.warn({ err: error, tenant: id }, 'provisioning connection closed'));
    let adminPassword: string;
    const adminEmail = `admin@${id}.local`;
    try {
      const client = await tenantPool.connect();
      try {
        await applyMigrations(client, 'tenant');
      } finally {
        client.release();
      }
      checkpoint('migrations');

      adminPassword = randomBytes(15).toString('base64url');
      const passwordHash = await hashPassword(adminPassword);
      await inTransaction(tenantPool, async (client) => {
        const user = await client.query(
          `INSERT INTO users (email, email_verified, display_name, password_hash)
           VALUES ($1, true, 'Tenant admin', $2) RETURNING id`,
          [adminEmail, passwordHash],
        );
        await client.query(
          "INSERT INTO user_roles (user_id, role) VALUES ($1, 'TenantAdmin'), ($1, 'User')",
          [user.rows[0].id],
        );
      });
      checkpoint('admin');

      const keys = createKeyStore(poolHandle(() => tenantPool), {
        secretBox: deps.secretBox,
        associatedDataPrefix: `tenant:${id}`,
        table: 'signing_keys',
        rotationGraceSeconds: () => 7 * 86400,
      });
      await keys.ensureKey();
      checkpoint('signing-key');
    } finally {
      await tenantPool.end();
    }

    const activated = await lockClient.query(
      "UPDATE tenants SET state = 'active' WHERE id = $1 RETURNING id, display_name, state, database_name, created_at",
      [id],
    );
    checkpoint('activate');
    const row = activated.rows[0];
    deps.logger.info({ tenant: id, database: databaseName }, 'tenant provisioned');
    // The tenant is active by now, so a failing hook is logged and does not undo it.
    await deps.hooks?.afterProvision?.(id).catch((error) =>
      deps.logger.error({ err: error, tenant: id }, 'starting background work of a new tenant failed'),
    );
    return {
      tenant: {
        id: row.id,
        displayName: row.display_name,
        state: row.state,
        databaseName: row.database_name,
        createdAt: row.created_at,
      },
      adminEmail,
      adminPassword,
    };
  } catch (error) {
    if (recorded) {
      await rollBackProvisioning(deps, lockClient, id, databaseName, databaseCreated).catch((cleanupError) =>
        deps.logger.error({ err: cleanupError, tenant: id }, 'rolling back a failed provisioning failed; the next start retries'),
      );
      deps.logger.error({ err: error, tenant: id }, 'provisioning failed and was rolled back');
    }
    throw error;
  } finally {
    await lockClient.query('SELECT pg_advisory_unlock_all()').catch(() => {});
    lockClient.release();
  }
}

async function rollBackProvisioning(
  deps: ProvisioningDeps,
  platformClient: pg.ClientBase,
  id: string,
  databaseName: string,
  databaseCreated: boolean,
): Promise<void> {
  if (databaseCreated) {
    await deps.pools.close(databaseName);
    await withClusterClient(deps, (client) => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
  }
  await platformClient.query('DELETE FROM tenants WHERE id = $1', [id]);
}

/**
 * Deletes a tenant: closes its pool, drops its database with every row in it, and deletes its
 * record. NOT_FOUND when no such tenant exists. The record goes last, so a failed drop can be
 * retried by calling again.
 */
export async function deleteTenant(deps: ProvisioningDeps, id: string): Promise<void> {
  assertTenantId(id);
  const { rows } = await deps.platformDb.query('SELECT database_name FROM tenants WHERE id = $1', [id]);
  if (rows.length === 0) {
    throw domainError('TENANT_NOT_FOUND', `tenant "${id}" does not exist`, { metadata: { tenant: id } });
  }
  const databaseName: string = rows[0].database_name;
  await deps.hooks?.beforeDelete?.(id);
  deps.registry.forget(id);
  await deps.pools.close(databaseName);
  await withClusterClient(deps, (client) => client.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`));
  await deps.platformDb.query('DELETE FROM tenants WHERE id = $1', [id]);
  deps.logger.info({ tenant: id, database: databaseName }, 'tenant deleted');
}

/**
 * Removes what crashed provisionings left: `provisioning` records whose provisioning session
 * is gone (its advisory lock is free) with their databases, and tenant databases of this
 * prefix that no record names. Returns the ids and database names it removed.
 */
export async function cleanUpAbandonedTenants(deps: ProvisioningDeps): Promise<string[]> {
  const removed: string[] = [];
  const pending = await deps.platformDb.query<{ id: string; database_name: string }>(
    "SELECT id, database_name FROM tenants WHERE state = 'provisioning'",
  );
  for (const row of pending.rows) {
    const client = await deps.platformDb.connect();
    try {
      const lock = await client.query('SELECT pg_try_advisory_lock(hashtext($1)) AS free', [provisioningLockKey(row.id)]);
      if (!lock.rows[0].free) continue;
      try {
        await rollBackProvisioning(deps, client, row.id, row.database_name, true);
        removed.push(row.id);
        deps.logger.warn({ tenant: row.id }, 'removed a tenant whose provisioning was interrupted');
      } finally {
        await client.query('SELECT pg_advisory_unlock(hashtext($1))', [provisioningLockKey(row.id)]);
      }
    } finally {
      client.release();
    }
  }

  const template = templateDatabaseName(deps.databasePrefix);
  const likePattern = `${deps.databasePrefix.replaceAll('_', '\\_')}tenant\\_%`;
  const orphans = await withClusterClient(deps, (client) =>
    client.query<{ datname: string }>(
      `SELECT datname FROM pg_database WHERE datname LIKE $1 AND datname <> $2`,
      [likePattern, template],
    ),
  );
  const known = await deps.platformDb.query<{ database_name: string }>('SELECT database_name FROM tenants');
  const knownNames = new Set(known.rows.map((row) => row.database_name));
  for (const { datname } of orphans.rows) {
    if (knownNames.has(datname)) continue;
    await withClusterClient(deps, (client) => client.query(`DROP DATABASE IF EXISTS ${datname} WITH (FORCE)`));
    removed.push(datname);
    deps.logger.warn({ database: datname }, 'dropped a tenant database that no tenant record names');
  }
  return removed;
}

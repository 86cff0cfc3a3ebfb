import type { Logger } from '../core/logger.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';

/** Actor of audit entries written by the scheduler. */
export const KEY_ROTATION_ACTOR = 'system:key-rotation';

/**
 * Rotates the tenant's signing key when the active key is older than the tenant's
 * `keyRotationIntervalDays`, or when there is no active key. Returns the new kid, or undefined
 * when nothing was due or another replica holds the tenant's rotation lock.
 *
 * A transaction-level advisory lock in the tenant database makes replicas check one after
 * another, and each check reads the key table after taking the lock, so one due key is
 * rotated once.
 */
export async function rotateKeyIfDue(tenant: TenantContext, logger: Logger): Promise<string | undefined> {
  const settings = await tenant.settings();
  const intervalSeconds = settings.keyRotationIntervalDays * 86_400;
  const client = await tenant.db.connect();
  try {
    await client.query('BEGIN');
    const locked = await client.query<{ locked: boolean }>(
      "SELECT pg_try_advisory_xact_lock(hashtextextended('tansu:key-rotation', 0)) AS locked",
    );
    if (!locked.rows[0].locked) {
      await client.query('ROLLBACK');
      return undefined;
    }

    const { rows } = await client.query<{ kid: string; due: boolean }>(
      `SELECT kid, created_at <= now() - make_interval(secs => $1) AS due FROM signing_keys
        WHERE retired_at IS NULL ORDER BY created_at DESC, kid LIMIT 1`,
      [intervalSeconds],
    );
    if (rows.length > 0 && !rows[0].due) {
      await client.query('ROLLBACK');
      return undefined;
    }

    // rotate() commits on its own connection while this transaction keeps the lock.
    const kid = await tenant.keys.rotate();
    await client.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4::jsonb)', [
      KEY_ROTATION_ACTOR,
      'signing_key.rotated',
      kid,
      JSON.stringify({ retiredKid: rows[0]?.kid ?? '', trigger: 'schedule' }),
    ]);
    await client.query('COMMIT');
    logger.info({ tenant: tenant.id, kid, retiredKid: rows[0]?.kid }, 'signing key rotated on schedule');
    return kid;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/** A running background loop that rotates due signing keys of every tenant. */
export interface KeyRotationScheduler {
  /** Checks every active tenant once; returns how many keys were rotated. */
  runOnce(): Promise<number>;
  /** Stops the loop and waits for a check in progress. */
  stop(): Promise<void>;
}

/**
 * Starts the key rotation loop: one check at once, then one every `periodSeconds`. A failure
 * for one tenant is logged and the loop goes on with the next tenant.
 */
export function startKeyRotationScheduler(platform: Platform, periodSeconds: number): KeyRotationScheduler {
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<number> | undefined;
  let stopped = false;

  async function checkAll(): Promise<number> {
    const { rows } = await platform.platformDb.query<{ id: string }>(
      "SELECT id FROM tenants WHERE state = 'active' ORDER BY id",
    );
    let rotated = 0;
    for (const { id } of rows) {
      if (stopped) break;
      try {
        const tenant = await platform.tenants.get(id);
        if (await rotateKeyIfDue(tenant, platform.logger)) rotated += 1;
      } catch (error) {
        platform.logger.error({ err: error, tenant: id }, 'scheduled signing key rotation failed');
      }
    }
    return rotated;
  }

  function runOnce(): Promise<number> {
    running ??= checkAll().finally(() => {
      running = undefined;
    });
    return running;
  }

  function schedule(delayMs: number): void {
    if (stopped) return;
    timer = setTimeout(() => {
      runOnce()
        .catch((error) => platform.logger.error({ err: error }, 'signing key rotation check failed'))
        .finally(() => schedule(periodSeconds * 1000));
    }, delayMs);
    timer.unref();
  }

  schedule(0);
  return {
    runOnce,
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running?.catch(() => undefined);
    },
  };
}

import { randomBytes } from 'node:crypto';

import pg from 'pg';

import { applyMigrations, type MigrationSet } from '../../services/db/migrate.ts';

/** URL of the PostgreSQL server the Jest global setup started. */
export function testDatabaseUrl(): string {
  const url = process.env.TANSU_TEST_DATABASE_URL;
  if (!url) throw new Error('TANSU_TEST_DATABASE_URL is not set; run the tests through `npm test`');
  return url;
}

/** Returns the test server's URL pointing at another database. */
export function urlForDatabase(database: string): string {
  const url = new URL(testDatabaseUrl());
  url.pathname = `/${database}`;
  return url.toString();
}

/** A unique, valid database name prefix for one test file, such as `t_3f9a1c_`. */
export function uniquePrefix(): string {
  return `t_${randomBytes(4).toString('hex')}_`;
}

/**
 * Creates a fresh database with the migrations of `set` applied and returns a pool on it and
 * a function that drops it.
 */
export async function createMigratedDatabase(
  set: MigrationSet,
): Promise<{ pool: pg.Pool; name: string; drop(): Promise<void> }> {
  const name = `${uniquePrefix()}${set}`;
  const admin = new pg.Client(testDatabaseUrl());
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();

  const pool = new pg.Pool({ connectionString: urlForDatabase(name), max: 5 });
  // pool.end() can resolve before its idle connections have closed, and DROP DATABASE ...
  // WITH (FORCE) then terminates them (57P01). Without a listener that error event would
  // fail whichever test runs next; any other error is rethrown.
  pool.on('error', (error: Error & { code?: string }) => {
    if (error.code !== '57P01') throw error;
  });
  const client = await pool.connect();
  try {
    await applyMigrations(client, set);
  } finally {
    client.release();
  }

  return {
    pool,
    name,
    async drop() {
      await pool.end();
      const dropper = new pg.Client(testDatabaseUrl());
      await dropper.connect();
      try {
        // pool.end() resolves before the server has closed the pool's sessions. Terminating
        // a session that is still closing makes its client emit an error nobody listens to,
        // which fails the test, so wait (at most 5 s) for the sessions to go first.
        const deadline = Date.now() + 5000;
        while (Date.now() < deadline) {
          const { rows } = await dropper.query(
            'SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = $1',
            [name],
          );
          if (rows[0].n === 0) break;
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await dropper.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      } finally {
        await dropper.end();
      }
    },
  };
}

/**
 * Sets a platform-wide setting directly in a test server's platform database. Tenants read it
 * within their settings cache time (a few seconds), at once when not yet loaded.
 */
export async function setPlatformSetting(databasePrefix: string, name: string, value: unknown): Promise<void> {
  const client = new pg.Client(urlForDatabase(`${databasePrefix}platform`));
  await client.connect();
  try {
    await client.query(
      `INSERT INTO platform_settings (name, value) VALUES ($1, $2)
       ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now()`,
      [name, JSON.stringify(value)],
    );
  } finally {
    await client.end();
  }
}

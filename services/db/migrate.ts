import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

import type pg from 'pg';

/** Which set of migrations a database takes: the platform database's or a tenant's. */
export type MigrationSet = 'platform' | 'tenant';

/** One SQL migration file. */
export interface Migration {
  /** File name, such as `0001_identity.sql`; files apply in name order. */
  name: string;
  sql: string;
  /** SHA-256 of the file, recorded so that an edited, already-applied file is detected. */
  checksum: string;
}

const migrationsRoot = fileURLToPath(new URL('../../prisma/migrations/', import.meta.url));

/** Reads the migration files of a set, ordered by name. */
export function loadMigrations(set: MigrationSet): Migration[] {
  const dir = join(migrationsRoot, set);
  return readdirSync(dir)
    .filter((name) => /^\d{4}_[a-z0-9_]+\.sql$/.test(name))
    .sort()
    .map((name) => {
      const sql = readFileSync(join(dir, name), 'utf8');
      return { name, sql, checksum: createHash('sha256').update(sql).digest('hex') };
    });
}

/**
 * Applies the migrations of `set` that the database has not recorded yet, each in its own
 * transaction together with its record in `schema_migrations`. An advisory lock serialises
 * concurrent runners on the same database, so two servers starting at once apply each file
 * once. Throws when an applied file's checksum changed, because editing a shipped migration
 * would leave databases that differ silently. Returns the names of the files it applied.
 */
export async function applyMigrations(client: pg.ClientBase, set: MigrationSet): Promise<string[]> {
  const migrations = loadMigrations(set);
  await client.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
    name text PRIMARY KEY,
    checksum text NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now()
  )`);
  await client.query('SELECT pg_advisory_lock(hashtext($1))', ['tansu.migrations']);
  try {
    const { rows } = await client.query<{ name: string; checksum: string }>(
      'SELECT name, checksum FROM schema_migrations',
    );
    const applied = new Map(rows.map((row) => [row.name, row.checksum]));
    const newlyApplied: string[] = [];
    for (const migration of migrations) {
      const recorded = applied.get(migration.name);
      if (recorded !== undefined) {
        if (recorded !== migration.checksum) {
          throw new Error(
            `migration ${set}/${migration.name} was changed after it was applied; ` +
              'add a new migration file instead of editing an applied one',
          );
        }
        continue;
      }
      await client.query('BEGIN');
      try {
        await client.query(migration.sql);
        await client.query('INSERT INTO schema_migrations (name, checksum) VALUES ($1, $2)', [
          migration.name,
          migration.checksum,
        ]);
        await client.query('COMMIT');
      } catch (error) {
        await client.query('ROLLBACK');
        throw new Error(`migration ${set}/${migration.name} failed: ${(error as Error).message}`, {
          cause: error,
        });
      }
      newlyApplied.push(migration.name);
    }
    return newlyApplied;
  } finally {
    await client.query('SELECT pg_advisory_unlock(hashtext($1))', ['tansu.migrations']);
  }
}

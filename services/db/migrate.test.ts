import pg from 'pg';

import { createMigratedDatabase, urlForDatabase } from '../../test/support/database.ts';
import { applyMigrations, loadMigrations } from './migrate.ts';

describe('applyMigrations', () => {
  test('applies each tenant migration once and records it', async () => {
    const database = await createMigratedDatabase('tenant');
    try {
      const client = await database.pool.connect();
      try {
        const again = await applyMigrations(client, 'tenant');
        expect(again).toEqual([]);
        const { rows } = await client.query('SELECT name FROM schema_migrations ORDER BY name');
        expect(rows.map((row) => row.name)).toEqual(loadMigrations('tenant').map((m) => m.name));
        const tables = await client.query(
          "SELECT count(*)::int AS n FROM information_schema.tables WHERE table_name = 'users'",
        );
        expect(tables.rows[0].n).toBe(1);
      } finally {
        client.release();
      }
    } finally {
      await database.drop();
    }
  });

  test('rejects an applied migration whose file changed', async () => {
    const database = await createMigratedDatabase('platform');
    try {
      const client = new pg.Client(urlForDatabase(database.name));
      await client.connect();
      try {
        const first = loadMigrations('platform')[0];
        await client.query('UPDATE schema_migrations SET checksum = $1 WHERE name = $2', ['x', first.name]);
        await expect(applyMigrations(client, 'platform')).rejects.toThrow(/was changed after it was applied/);
      } finally {
        await client.end();
      }
    } finally {
      await database.drop();
    }
  });
});

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { urlForDatabase } from './support/database.ts';
import { deployFunction, queryTenant } from './support/functions.ts';
import { platformAdminToken, provisionTenant } from './support/rest.ts';
import { startServer, type TestServer } from './support/server.ts';
import { waitFor } from './support/wait.ts';

const TENANT = 'crash-e2e';
const EVENTS = 300;

describe('event delivery across a server crash', () => {
  let server: TestServer | undefined;
  const dataDir = mkdtempSync(join(tmpdir(), 'tansu-crash-'));

  afterAll(async () => {
    await server?.stop();
    rmSync(dataDir, { recursive: true, force: true });
  });

  test('every accepted event is delivered after kill -9 and restart', async () => {
    // A short lease lets the restarted server take over attempts the killed one had claimed.
    const env = { TANSU_TRIGGER_LEASE_MS: '2000' };
    server = await startServer({ env, dataDir });
    const { databasePrefix } = server;
    const adminToken = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
    // The default limit of 100 executions a minute would hold most of these back. Set before
    // provisioning, so no cached settings of the tenant predate it.
    const platformDb = new pg.Client(urlForDatabase(`${databasePrefix}platform`));
    await platformDb.connect();
    await platformDb.query(
      "INSERT INTO platform_settings (name, value) VALUES ('functionExecutionsPerMinute', '100000') ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    );
    await platformDb.end();
    await provisionTenant(server.baseUrl, adminToken, TENANT);
    await deployFunction(databasePrefix, TENANT, 'consume', 'export default async (request) => request.body.id;');
    await queryTenant(
      databasePrefix,
      TENANT,
      "INSERT INTO triggers (function_name, kind, event_pattern) VALUES ('consume', 'event', 'job.*')",
    );

    // Accepted events: each committed INSERT below. The server dies while it delivers them.
    const accepted: string[] = [];
    for (let batch = 0; batch < EVENTS / 50; batch++) {
      const rows = await queryTenant<{ id: string }>(
        databasePrefix,
        TENANT,
        "SELECT tansu_emit_event('job.queued', 'jobs/' || n, jsonb_build_object('n', n)) AS id FROM generate_series($1::int, $2::int) AS n",
        [batch * 50, batch * 50 + 49],
      );
      accepted.push(...rows.map((row) => row.id));
      if (batch === 1) await waitFor('the first deliveries', async () =>
        (await queryTenant(databasePrefix, TENANT, "SELECT 1 FROM executions WHERE function_name = 'consume' LIMIT 1")).length > 0);
    }
    await server.kill();
    server = await startServer({ env, databasePrefix, dataDir });

    await waitFor(
      'every accepted event delivered',
      async () => {
        const delivered = await queryTenant<{ count: string }>(
          databasePrefix,
          TENANT,
          `SELECT count(DISTINCT trigger_source) AS count FROM executions
           WHERE function_name = 'consume' AND status = 'succeeded' AND trigger_source = ANY($1::text[])`,
          [accepted],
        );
        return Number(delivered[0].count) === accepted.length;
      },
      60_000,
      250,
    );
    expect(accepted).toHaveLength(EVENTS);
  }, 120_000);
});

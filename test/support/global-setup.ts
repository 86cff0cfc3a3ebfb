import { rmSync } from 'node:fs';
import { resolve } from 'node:path';

import { startEmbeddedPostgres, type EmbeddedDatabase } from '../../services/db/embedded.ts';

declare global {
  var __tansuTestDatabase: EmbeddedDatabase | undefined;
}

/**
 * Starts one embedded PostgreSQL for the whole test run, in a fresh directory, and exports its
 * URL as TANSU_TEST_DATABASE_URL for the test files and the servers they start.
 */
export default async function globalSetup(): Promise<void> {
  if (process.env.TANSU_TEST_DATABASE_URL) return;
  const dataDir = resolve('.test-data', `pg-${process.pid}`);
  rmSync(dataDir, { recursive: true, force: true });
  const database = await startEmbeddedPostgres({ dataDir });
  globalThis.__tansuTestDatabase = database;
  process.env.TANSU_TEST_DATABASE_URL = database.url;
  process.env.TANSU_TEST_DATA_DIR = dataDir;
}

import { rmSync } from 'node:fs';

/** Stops the PostgreSQL that the global setup started and removes its data. */
export default async function globalTeardown(): Promise<void> {
  const database = globalThis.__tansuTestDatabase;
  if (!database) return;
  await database.stop();
  if (process.env.TANSU_TEST_DATA_DIR) {
    rmSync(process.env.TANSU_TEST_DATA_DIR, { recursive: true, force: true });
  }
}

// Measures outbox-to-invoke latency of the event dispatcher: inserts documents one by one
// into a fresh tenant database, lets a dispatcher deliver them to a no-op invoke, and
// prints p50/p95 latency and delivered events per second. Bounded by EVENTS (default 500)
// and a 60 s deadline.
//
//   DATABASE_URL=postgres://... node_modules/.bin/node --no-node-snapshot bench/event-latency.ts
//
// Without DATABASE_URL it starts an embedded PostgreSQL under a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { startEmbeddedPostgres } from '../services/db/embedded.ts';
import { applyMigrations } from '../services/db/migrate.ts';
import { createEventDispatcher, type EventDelivery } from '../services/triggers/dispatcher.ts';

const events = Number(process.env.EVENTS ?? 500);
const deadlineMs = 60_000;

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
let dataDir: string | undefined;
let serverUrl = process.env.DATABASE_URL;
if (!serverUrl) {
  dataDir = mkdtempSync(join(tmpdir(), 'tansu-bench-'));
  embedded = await startEmbeddedPostgres({ dataDir });
  serverUrl = embedded.url;
}

const databaseName = `bench_events_${process.pid}`;
const admin = new pg.Client(serverUrl);
await admin.connect();
await admin.query(`CREATE DATABASE ${databaseName}`);
const url = new URL(serverUrl);
url.pathname = `/${databaseName}`;
const pool = new pg.Pool({ connectionString: url.toString(), max: 10 });
// Dropping the database at the end ends connections the pool may still be closing.
pool.on('error', () => undefined);

try {
  const client = await pool.connect();
  await applyMigrations(client, 'tenant');
  client.release();
  await pool.query(`INSERT INTO functions (name) VALUES ('noop')`);
  await pool.query(`INSERT INTO triggers (function_name, kind, event_pattern) VALUES ('noop', 'event', 'document.created')`);
  await pool.query(`INSERT INTO collections (id) VALUES ('bench')`);

  const latencies: number[] = [];
  const insertedAt = new Map<number, number>();
  const invoke = async (delivery: EventDelivery) => {
    const index = (delivery.event.payload as { document: { data: { index: number } } }).document.data.index;
    latencies.push(performance.now() - (insertedAt.get(index) ?? performance.now()));
    return { ok: true };
  };
  const dispatcher = createEventDispatcher({ pool, tenant: 'bench', invoke, pollIntervalMs: 1000, concurrency: 16 });
  await dispatcher.start();

  const started = performance.now();
  for (let index = 0; index < events && performance.now() - started < deadlineMs; index++) {
    insertedAt.set(index, performance.now());
    await pool.query(`INSERT INTO documents (collection_id, data) VALUES ('bench', $1)`, [{ index }]);
  }
  while (latencies.length < insertedAt.size && performance.now() - started < deadlineMs) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const elapsedS = (performance.now() - started) / 1000;
  await dispatcher.stop();

  const sorted = [...latencies].sort((a, b) => a - b);
  console.log(`events inserted: ${insertedAt.size}, delivered: ${latencies.length}`);
  console.log(`outbox->invoke latency p50: ${percentile(sorted, 0.5).toFixed(1)} ms, p95: ${percentile(sorted, 0.95).toFixed(1)} ms`);
  console.log(`throughput: ${(latencies.length / elapsedS).toFixed(0)} events/s (inserts one at a time)`);
} finally {
  await pool.end();
  await admin.query(`DROP DATABASE IF EXISTS ${databaseName} WITH (FORCE)`);
  await admin.end();
  await embedded?.stop();
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
}

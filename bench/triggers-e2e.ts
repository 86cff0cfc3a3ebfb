// Measures event and schedule triggers through the real server with a real function:
// event written -> function start (p50/p95, from outbox.created_at to executions.started_at),
// sustained events per second, and schedule fire delay after the slot (p99). Bounded by
// LATENCY_EVENTS (default 300), THROUGHPUT_EVENTS (default 5000), SCHEDULE_MINUTES (default 2,
// with 20 every-minute triggers) and a deadline per phase.
//
//   node_modules/.bin/node --no-node-snapshot bench/triggers-e2e.ts
//
// Without DATABASE_URL it starts an embedded PostgreSQL under a temporary directory.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import pg from 'pg';

import { startEmbeddedPostgres } from '../services/db/embedded.ts';
import { deployFunction, queryTenant } from '../test/support/functions.ts';
import { platformAdminToken, provisionTenant } from '../test/support/rest.ts';
import { startServer } from '../test/support/server.ts';

const latencyEvents = Number(process.env.LATENCY_EVENTS ?? 300);
const throughputEvents = Number(process.env.THROUGHPUT_EVENTS ?? 5000);
const scheduleMinutes = Number(process.env.SCHEDULE_MINUTES ?? 2);
const TENANT = 'bench';

function percentile(sorted: number[], fraction: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * fraction))];
}

async function waitUntil(check: () => Promise<boolean>, deadlineMs: number): Promise<boolean> {
  const deadline = Date.now() + deadlineMs;
  while (Date.now() < deadline) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  return false;
}

let embedded: Awaited<ReturnType<typeof startEmbeddedPostgres>> | undefined;
let pgDir: string | undefined;
if (!process.env.DATABASE_URL && !process.env.TANSU_TEST_DATABASE_URL) {
  pgDir = mkdtempSync(join(tmpdir(), 'tansu-bench-'));
  embedded = await startEmbeddedPostgres({ dataDir: pgDir });
  process.env.TANSU_TEST_DATABASE_URL = embedded.url;
}
process.env.TANSU_TEST_DATABASE_URL ??= process.env.DATABASE_URL;

let server: Awaited<ReturnType<typeof startServer>> | undefined;
try {
  server = await startServer();
  const prefix = server.databasePrefix;
  const platformDb = new pg.Client(new URL(`/${prefix}platform`, process.env.TANSU_TEST_DATABASE_URL).toString());
  await platformDb.connect();
  await platformDb.query(
    "INSERT INTO platform_settings (name, value) VALUES ('functionExecutionsPerMinute', '1000000') ON CONFLICT (name) DO UPDATE SET value = excluded.value",
  );
  await platformDb.end();
  const token = await platformAdminToken(server.baseUrl, server.adminEmail, server.adminPassword);
  await provisionTenant(server.baseUrl, token, TENANT);
  await deployFunction(prefix, TENANT, 'sink', 'export default async (request) => request.body.id;');
  await queryTenant(prefix, TENANT, "INSERT INTO triggers (function_name, kind, event_pattern) VALUES ('sink', 'event', 'bench.*')");

  const tenantDb = new pg.Client(new URL(`/${prefix}tenant_${TENANT}`, process.env.TANSU_TEST_DATABASE_URL).toString());
  await tenantDb.connect();

  // Latency: one event at a time, 10 ms apart, so the dispatcher is never saturated.
  for (let index = 0; index < latencyEvents; index++) {
    await tenantDb.query("SELECT tansu_emit_event('bench.latency', NULL, '{}')");
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  const countOf = async (type: string) =>
    Number((await tenantDb.query(
      `SELECT count(*) AS n FROM executions e JOIN outbox o ON o.event_id::text = e.trigger_source WHERE o.type = $1`, [type])).rows[0].n);
  await waitUntil(async () => (await countOf('bench.latency')) >= latencyEvents, 60_000);
  const latencies = (await tenantDb.query<{ ms: number }>(
    `SELECT extract(epoch FROM e.started_at - o.created_at) * 1000 AS ms
     FROM executions e JOIN outbox o ON o.event_id::text = e.trigger_source WHERE o.type = 'bench.latency'`,
  )).rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
  console.log(`event -> function start, ${latencies.length} events: p50 ${percentile(latencies, 0.5).toFixed(1)} ms, p95 ${percentile(latencies, 0.95).toFixed(1)} ms, max ${latencies[latencies.length - 1].toFixed(1)} ms`);

  // Throughput: all events written in batches of 500 as fast as possible.
  const started = Date.now();
  for (let offset = 0; offset < throughputEvents; offset += 500) {
    await tenantDb.query(
      "SELECT tansu_emit_event('bench.load', NULL, '{}') FROM generate_series(1, $1::int)",
      [Math.min(500, throughputEvents - offset)],
    );
  }
  const done = await waitUntil(async () => (await countOf('bench.load')) >= throughputEvents, 120_000);
  const span = (await tenantDb.query<{ ms: number }>(
    `SELECT extract(epoch FROM max(e.started_at + make_interval(secs => e.duration_ms / 1000)) - min(o.created_at)) * 1000 AS ms
     FROM executions e JOIN outbox o ON o.event_id::text = e.trigger_source WHERE o.type = 'bench.load'`,
  )).rows[0].ms;
  const delivered = await countOf('bench.load');
  console.log(`throughput: ${delivered}/${throughputEvents} events${done ? '' : ' (deadline hit)'} in ${Number(span).toFixed(0)} ms = ${(delivered / (Number(span) / 1000)).toFixed(0)} events/s (wall ${Date.now() - started} ms)`);

  // Schedule fire delay: 20 every-minute triggers for SCHEDULE_MINUTES minutes.
  if (scheduleMinutes > 0) {
    await deployFunction(prefix, TENANT, 'tick', 'export default async () => "ok";');
    for (let index = 0; index < 20; index++) {
      await tenantDb.query("INSERT INTO triggers (function_name, kind, cron, time_zone) VALUES ('tick', 'schedule', '* * * * *', 'UTC')");
    }
    await new Promise((resolve) => setTimeout(resolve, scheduleMinutes * 60_000 + 2_000));
    const delays = (await tenantDb.query<{ ms: number }>(
      `SELECT extract(epoch FROM started_at - trigger_source::timestamptz) * 1000 AS ms
       FROM executions WHERE function_name = 'tick' AND trigger_type = 'schedule'`,
    )).rows.map((row) => Number(row.ms)).sort((a, b) => a - b);
    if (delays.length > 0) {
      console.log(`schedule fire delay, ${delays.length} slots: p50 ${percentile(delays, 0.5).toFixed(1)} ms, p99 ${percentile(delays, 0.99).toFixed(1)} ms, max ${delays[delays.length - 1].toFixed(1)} ms`);
    }
  }
  await tenantDb.end();
} finally {
  await server?.stop();
  await embedded?.stop();
  if (pgDir) rmSync(pgDir, { recursive: true, force: true });
}

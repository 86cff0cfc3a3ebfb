import { randomUUID } from 'node:crypto';

import pino from 'pino';
import type pg from 'pg';

import { createMigratedDatabase } from '../../test/support/database.ts';
import { createExecutionRecorder, type ExecutionRow } from './execution-recorder.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

let database: Database;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createMigratedDatabase('tenant');
  pool = database.pool;
  await pool.query("INSERT INTO functions (name) VALUES ('recorded')");
});

afterAll(async () => {
  await database.drop();
});

function row(functionName = 'recorded', status: ExecutionRow['status'] = 'succeeded'): ExecutionRow {
  return {
    id: randomUUID(),
    functionName,
    version: 1,
    triggerType: 'http',
    triggerSource: 'req-1',
    startedAt: new Date('2026-01-02T03:04:05Z'),
    durationMs: 1.5,
    status,
    error: status === 'succeeded' ? null : 'failed on purpose',
    logs: [{ level: 'info', message: 'hello', time: 1, fields: { n: 1 } }],
  };
}

async function storedIds(ids: string[]): Promise<string[]> {
  const { rows } = await pool.query<{ id: string }>('SELECT id FROM executions WHERE id = ANY($1::uuid[]) ORDER BY id', [ids]);
  return rows.map((stored) => stored.id);
}

/** Wraps the pool in a Database that counts the queries it passes on. */
function countingDb() {
  const counter = { queries: 0 };
  const db = {
    query: ((...args: Parameters<pg.Pool['query']>) => {
      counter.queries += 1;
      return pool.query(...args);
    }) as pg.Pool['query'],
    connect: () => pool.connect(),
  };
  return { db, counter };
}

describe('execution recorder', () => {
  test('record writes every field', async () => {
    const recorder = createExecutionRecorder(pino({ level: 'silent' }));
    const written = row('recorded', 'error');
    await recorder.record('t', pool, written);
    const { rows } = await pool.query('SELECT * FROM executions WHERE id = $1', [written.id]);
    expect(rows[0]).toMatchObject({
      function_name: 'recorded',
      version: 1,
      trigger_type: 'http',
      trigger_source: 'req-1',
      started_at: written.startedAt,
      duration_ms: 1.5,
      status: 'error',
      error: 'failed on purpose',
      logs: written.logs,
    });
  });

  test('rows of one turn share an INSERT', async () => {
    const recorder = createExecutionRecorder(pino({ level: 'silent' }));
    const { db, counter } = countingDb();
    const rows = Array.from({ length: 20 }, () => row());
    for (const queued of rows) void recorder.record('t', db, queued);
    expect(recorder.pendingRows('t')).toBe(20);
    await recorder.flush('t');
    expect(counter.queries).toBe(1);
    expect(recorder.pendingRows('t')).toBe(0);
    expect(await storedIds(rows.map((queued) => queued.id))).toEqual(rows.map((queued) => queued.id).sort());
  });

  test('a failing row spares its batch', async () => {
    const recorder = createExecutionRecorder(pino({ level: 'silent' }));
    const good = [row(), row()];
    const orphan = row('no-such-function');
    const results = await Promise.allSettled([
      recorder.record('t', pool, good[0]!),
      recorder.record('t', pool, orphan),
      recorder.record('t', pool, good[1]!),
    ]);
    expect(results.map((result) => result.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    expect(((results[1] as PromiseRejectedResult).reason as { code?: string }).code).toBe('23503');
    expect(await storedIds(good.map((queued) => queued.id))).toEqual(good.map((queued) => queued.id).sort());
  });

  test('close writes rows of every tenant', async () => {
    const recorder = createExecutionRecorder(pino({ level: 'silent' }));
    const rows = [row(), row(), row()];
    rows.forEach((queued, index) => void recorder.record(`tenant-${index}`, pool, queued));
    await recorder.close();
    expect(await storedIds(rows.map((queued) => queued.id))).toHaveLength(3);
  });
});

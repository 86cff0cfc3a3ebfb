import type pg from 'pg';

import { createMigratedDatabase } from '../../test/support/database.ts';
import { waitFor } from '../../test/support/wait.ts';
import { matchesEventPattern } from './event-pattern.ts';
import {
  createEventDispatcher,
  replayDeadLetters,
  type EventDelivery,
  type EventDispatcher,
  type InvokeResult,
} from './dispatcher.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

interface RecordedCall {
  at: number;
  delivery: EventDelivery;
}

/** An `invoke` that records each call and returns the result of `respond`. */
function recorder(respond: (delivery: EventDelivery, calls: RecordedCall[]) => InvokeResult) {
  const calls: RecordedCall[] = [];
  const invoke = async (delivery: EventDelivery): Promise<InvokeResult> => {
    calls.push({ at: Date.now(), delivery });
    return respond(delivery, calls);
  };
  return { calls, invoke };
}

async function addFunction(pool: pg.Pool, name: string): Promise<void> {
  await pool.query('INSERT INTO functions (name) VALUES ($1)', [name]);
}

async function addEventTrigger(
  pool: pg.Pool,
  functionName: string,
  pattern: string,
  settings: { maxAttempts?: number; backoffSeconds?: number } = {},
): Promise<string> {
  const { rows } = await pool.query(
    `INSERT INTO triggers (function_name, kind, event_pattern, max_attempts, backoff_seconds)
     VALUES ($1, 'event', $2, $3, $4) RETURNING id`,
    [functionName, pattern, settings.maxAttempts ?? 4, settings.backoffSeconds ?? 1],
  );
  return rows[0].id;
}

async function countRows(pool: pg.Pool, sql: string, params: unknown[] = []): Promise<number> {
  const { rows } = await pool.query(`SELECT count(*)::int AS n FROM (${sql}) AS counted`, params);
  return rows[0].n;
}

/** Waits until every outbox event is fanned out and no delivery is pending or running. */
async function waitUntilIdle(pool: pg.Pool): Promise<void> {
  await waitFor('the dispatcher to become idle', async () => {
    const undispatched = await countRows(pool, 'SELECT 1 FROM outbox WHERE dispatched_at IS NULL');
    const open = await countRows(pool, `SELECT 1 FROM deliveries WHERE status IN ('pending', 'running')`);
    return undispatched === 0 && open === 0;
  });
}

describe('event dispatcher', () => {
  const databases: Database[] = [];
  const dispatchers: EventDispatcher[] = [];

  async function database(): Promise<Database> {
    const created = await createMigratedDatabase('tenant');
    databases.push(created);
    return created;
  }

  function start(dispatcher: EventDispatcher): EventDispatcher {
    dispatchers.push(dispatcher);
    return dispatcher;
  }

  afterEach(async () => {
    await Promise.all(dispatchers.splice(0).map((dispatcher) => dispatcher.stop()));
    await Promise.all(databases.splice(0).map((created) => created.drop()));
  });

  test('fans out to matching triggers of one tenant only', async () => {
    const tenant1 = await database();
    const tenant2 = await database();
    for (const name of ['f1', 'f2', 'f3']) await addFunction(tenant1.pool, name);
    await addFunction(tenant2.pool, 'f4');
    await addEventTrigger(tenant1.pool, 'f1', 'document.created');
    await addEventTrigger(tenant1.pool, 'f2', 'document.*');
    await addEventTrigger(tenant1.pool, 'f3', 'user.*');
    await addEventTrigger(tenant2.pool, 'f4', 'document.*');

    const { calls, invoke } = recorder(() => ({ ok: true }));
    const dispatcher1 = start(createEventDispatcher({ pool: tenant1.pool, tenant: 't1', invoke, pollIntervalMs: 200 }));
    const dispatcher2 = start(createEventDispatcher({ pool: tenant2.pool, tenant: 't2', invoke, pollIntervalMs: 200 }));
    await dispatcher1.start();
    await dispatcher2.start();

    // Plain SQL, as any client of the database would write it.
    await tenant1.pool.query(`INSERT INTO collections (id) VALUES ('orders')`);
    await tenant1.pool.query(`INSERT INTO documents (collection_id, data) VALUES ('orders', '{"total": 12}')`);

    await waitFor('f1 and f2 to run', () => calls.length >= 2);
    await waitUntilIdle(tenant1.pool);
    await waitUntilIdle(tenant2.pool);
    await dispatcher1.runOnce();
    await dispatcher2.runOnce();

    const byFunction = (name: string) => calls.filter((call) => call.delivery.functionName === name);
    expect(byFunction('f1')).toHaveLength(1);
    expect(byFunction('f2')).toHaveLength(1);
    expect(byFunction('f3')).toHaveLength(0);
    expect(byFunction('f4')).toHaveLength(0);
    const [call] = byFunction('f1');
    expect(call.delivery.tenant).toBe('t1');
    expect(call.delivery.attempt).toBe(1);
    expect(call.delivery.maxAttempts).toBe(4);
    expect(call.delivery.event.type).toBe('document.created');
    expect(call.delivery.event.payload).toMatchObject({
      document: { collectionId: 'orders', data: { total: 12 } },
    });
    expect(await countRows(tenant1.pool, `SELECT 1 FROM deliveries WHERE status = 'succeeded'`)).toBe(2);
  });

  test('fan-out matches patterns like matchesEventPattern', async () => {
    const { pool } = await database();
    await addFunction(pool, 'f');
    const patterns = ['document.*', '*.deleted', 'user.created', 'a.*.c', '*', 'document'];
    const triggerIds = new Map<string, string>();
    for (const pattern of patterns) triggerIds.set(await addEventTrigger(pool, 'f', pattern), pattern);
    const types = ['document.created', 'documents.created', 'document', 'document.created.v2',
      'user.deleted', 'user.created', 'a.b.c', 'a.bc', 'a.b.c.d', 'x'];
    for (const type of types) await pool.query(`SELECT tansu_emit_event($1, NULL, '{}')`, [type]);

    const dispatcher = start(createEventDispatcher({ pool, tenant: 't', invoke: async () => ({ ok: true }), listen: false }));
    await dispatcher.runOnce();

    const { rows } = await pool.query<{ type: string; trigger_id: string }>(
      'SELECT o.type, d.trigger_id FROM deliveries d JOIN outbox o ON o.event_id = d.event_id',
    );
    const actual = rows.map((row) => `${row.type} ${triggerIds.get(row.trigger_id)}`).sort();
    const expected = types.flatMap((type) =>
      patterns.filter((pattern) => matchesEventPattern(pattern, type)).map((pattern) => `${type} ${pattern}`)).sort();
    expect(expected).toContain('a.b.c a.*.c');
    expect(actual).toEqual(expected);
  });

  test('retries with backoff, then writes one dead letter', async () => {
    const { pool } = await database();
    await addFunction(pool, 'flaky');
    await addEventTrigger(pool, 'flaky', 'document.created', { maxAttempts: 3, backoffSeconds: 2 });
    const { calls, invoke } = recorder((_delivery, recorded) => ({
      ok: false,
      error: `failure ${recorded.length}`,
    }));
    const dispatcher = start(createEventDispatcher({ pool, tenant: 't', invoke, pollIntervalMs: 200 }));
    await dispatcher.start();

    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('c')`);

    await waitFor('the dead letter', async () => (await countRows(pool, 'SELECT 1 FROM dead_letters')) > 0, 20_000);
    expect(calls).toHaveLength(3);
    expect(calls.map((call) => call.delivery.attempt)).toEqual([1, 2, 3]);
    expect(calls[1].at - calls[0].at).toBeGreaterThanOrEqual(2000);
    expect(calls[2].at - calls[1].at).toBeGreaterThanOrEqual(4000);

    const { rows } = await pool.query('SELECT * FROM dead_letters');
    expect(rows).toHaveLength(1);
    expect(rows[0].attempts).toBe(3);
    expect(rows[0].last_error).toBe('failure 3');
    expect(rows[0].function_name).toBe('flaky');
    expect(rows[0].event_type).toBe('document.created');
    expect(rows[0].replayed_at).toBeNull();
    const delivery = await pool.query('SELECT status, attempts FROM deliveries');
    expect(delivery.rows).toEqual([{ status: 'dead', attempts: 3 }]);

    // Nothing is due any more, so further passes make no fourth call.
    await dispatcher.runOnce();
    await new Promise((resolve) => setTimeout(resolve, 500));
    await dispatcher.runOnce();
    expect(calls).toHaveLength(3);
  }, 30_000);

  test('replay runs one cycle and keeps one dead letter', async () => {
    const { pool } = await database();
    await addFunction(pool, 'flaky');
    const triggerId = await addEventTrigger(pool, 'flaky', 'document.created', { maxAttempts: 2, backoffSeconds: 1 });
    let succeed = false;
    const { calls, invoke } = recorder((_delivery, recorded) =>
      succeed ? { ok: true } : { ok: false, error: `failure ${recorded.length}` },
    );
    const dispatcher = start(createEventDispatcher({ pool, tenant: 't', invoke, pollIntervalMs: 200 }));
    await dispatcher.start();
    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('c')`);
    const deadLetter = async () => (await pool.query('SELECT * FROM dead_letters')).rows;
    await waitFor('the first dead letter', async () => (await deadLetter()).length === 1, 20_000);
    expect(calls).toHaveLength(2);

    // A replayed cycle that fails again updates the same row.
    const [first] = await deadLetter();
    expect(await replayDeadLetters(pool, { ids: [first.id] })).toEqual([first.id]);
    await waitFor('the replayed cycle to fail', async () => {
      const [row] = await deadLetter();
      return row.replayed_at === null && row.last_error === 'failure 4';
    }, 20_000);
    expect(calls).toHaveLength(4);
    expect(calls.slice(2).map((call) => call.delivery.attempt)).toEqual([1, 2]);
    let rows = await deadLetter();
    expect(rows).toHaveLength(1);
    expect(rows[0].id).toBe(first.id);
    expect(rows[0].attempts).toBe(2);
    expect(rows[0].replay_count).toBe(1);

    // A replay by filter that succeeds leaves the row, marked as replayed.
    succeed = true;
    expect(await replayDeadLetters(pool, { filter: { functionName: 'other' } })).toEqual([]);
    expect(await replayDeadLetters(pool, { filter: { functionName: 'flaky' } })).toEqual([first.id]);
    await waitUntilIdle(pool);
    expect(calls).toHaveLength(5);
    rows = await deadLetter();
    expect(rows).toHaveLength(1);
    expect(rows[0].replayed_at).not.toBeNull();
    expect(rows[0].replay_count).toBe(2);
    const delivery = await pool.query('SELECT status FROM deliveries WHERE trigger_id = $1', [triggerId]);
    expect(delivery.rows).toEqual([{ status: 'succeeded' }]);

    // Replaying a row that is not dead does nothing.
    expect(await replayDeadLetters(pool, { ids: [first.id] })).toEqual([]);
  }, 40_000);

  test('replay rejects a request without ids or filter', async () => {
    const { pool } = await database();
    await expect(replayDeadLetters(pool, {})).rejects.toThrow(/by ids or a filter/);
    await expect(replayDeadLetters(pool, { ids: ['x'] })).rejects.toThrow(/"x" is not a UUID/);
  });

  test('two dispatchers deliver each event once', async () => {
    const { pool } = await database();
    await addFunction(pool, 'count');
    await addEventTrigger(pool, 'count', 'document.created');
    const { calls, invoke } = recorder(() => ({ ok: true }));
    const slowInvoke = async (delivery: EventDelivery) => {
      await new Promise((resolve) => setTimeout(resolve, 5));
      return invoke(delivery);
    };
    const first = start(createEventDispatcher({ pool, tenant: 't', invoke: slowInvoke, pollIntervalMs: 100 }));
    const second = start(createEventDispatcher({ pool, tenant: 't', invoke: slowInvoke, pollIntervalMs: 100 }));
    await first.start();
    await second.start();

    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    const documents = 60;
    for (let index = 0; index < documents; index++) {
      await pool.query(`INSERT INTO documents (collection_id, data) VALUES ('c', $1)`, [{ index }]);
    }
    await waitFor('every event to be delivered', () => calls.length >= documents);
    await waitUntilIdle(pool);
    await first.runOnce();
    await second.runOnce();

    expect(calls).toHaveLength(documents);
    expect(new Set(calls.map((call) => call.delivery.event.id)).size).toBe(documents);
  });

  test('expired lease is claimed again or dead-lettered', async () => {
    const { pool } = await database();
    await addFunction(pool, 'f');
    const triggerId = await addEventTrigger(pool, 'f', 'document.created', { maxAttempts: 2 });
    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('c'), ('c')`);
    const events = await pool.query(`SELECT event_id FROM outbox WHERE type = 'document.created' ORDER BY id`);
    // Two deliveries left behind by a crashed process: one on its first attempt, one on its last.
    await pool.query(
      `INSERT INTO deliveries (event_id, trigger_id, status, attempts, claimed_until)
       VALUES ($1, $3, 'running', 1, now() - interval '1 second'),
              ($2, $3, 'running', 2, now() - interval '1 second')`,
      [events.rows[0].event_id, events.rows[1].event_id, triggerId],
    );
    await pool.query('UPDATE outbox SET dispatched_at = now()');

    const { calls, invoke } = recorder(() => ({ ok: true }));
    const dispatcher = start(createEventDispatcher({ pool, tenant: 't', invoke, listen: false }));
    await dispatcher.runOnce();
    await waitFor('the reclaimed attempt', () => calls.length === 1);
    await waitUntilIdle(pool);

    expect(calls[0].delivery.event.id).toBe(events.rows[0].event_id);
    expect(calls[0].delivery.attempt).toBe(2);
    const { rows } = await pool.query(
      'SELECT event_id, status, attempts FROM deliveries ORDER BY status',
    );
    expect(rows).toEqual([
      { event_id: events.rows[1].event_id, status: 'dead', attempts: 2 },
      { event_id: events.rows[0].event_id, status: 'succeeded', attempts: 2 },
    ]);
    const dead = await pool.query('SELECT last_error FROM dead_letters');
    expect(dead.rows).toEqual([{ last_error: 'attempt 2 did not finish before its lease expired' }]);
  });

  test('run longer than the lease is not started twice', async () => {
    const { pool } = await database();
    await addFunction(pool, 'slow');
    await addEventTrigger(pool, 'slow', 'document.created');
    const { calls, invoke } = recorder(() => ({ ok: true }));
    // Each run takes four leases; without renewal the second dispatcher would claim it again.
    const slowInvoke = async (delivery: EventDelivery) => {
      await new Promise((resolve) => setTimeout(resolve, 2_000));
      return invoke(delivery);
    };
    const options = { pool, tenant: 't', invoke: slowInvoke, pollIntervalMs: 100, leaseMs: 500 };
    const first = start(createEventDispatcher(options));
    const second = start(createEventDispatcher(options));
    await first.start();
    await second.start();

    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('c')`);
    await waitFor('the run to finish', () => calls.length >= 1);
    await waitUntilIdle(pool);
    await new Promise((resolve) => setTimeout(resolve, 700));

    expect(calls).toHaveLength(1);
    const { rows } = await pool.query('SELECT status, attempts FROM deliveries');
    expect(rows).toEqual([{ status: 'succeeded', attempts: 1 }]);
  });

  test('stop waits for attempts in progress', async () => {
    const { pool } = await database();
    await addFunction(pool, 'slow');
    await addEventTrigger(pool, 'slow', 'document.created');
    let release: () => void = () => undefined;
    const started: string[] = [];
    const invoke = async (delivery: EventDelivery): Promise<InvokeResult> => {
      started.push(delivery.id);
      await new Promise<void>((resolve) => {
        release = resolve;
      });
      return { ok: true };
    };
    const dispatcher = createEventDispatcher({ pool, tenant: 't', invoke, pollIntervalMs: 100 });
    await dispatcher.start();
    await pool.query(`INSERT INTO collections (id) VALUES ('c')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('c')`);
    await waitFor('the attempt to start', () => started.length === 1);

    let stopped = false;
    const stopping = dispatcher.stop().then(() => {
      stopped = true;
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(stopped).toBe(false);
    release();
    await stopping;
    const { rows } = await pool.query('SELECT status FROM deliveries');
    expect(rows).toEqual([{ status: 'succeeded' }]);
  });
});

describe('outbox triggers', () => {
  let database: Database;

  beforeAll(async () => {
    database = await createMigratedDatabase('tenant');
  });

  afterAll(async () => {
    await database.drop();
  });

  async function eventsOfType(type: string) {
    const { rows } = await database.pool.query(
      'SELECT type, subject, payload FROM outbox WHERE type = $1 ORDER BY id',
      [type],
    );
    return rows;
  }

  test('document writes append outbox events', async () => {
    const { pool } = database;
    await pool.query(`INSERT INTO collections (id) VALUES ('notes')`);
    const inserted = await pool.query(
      `INSERT INTO documents (collection_id, data) VALUES ('notes', '{"a": 1, "b": 2}') RETURNING id`,
    );
    const id = inserted.rows[0].id;
    await pool.query(`UPDATE documents SET data = '{"a": 1, "b": 3, "c": 4}' WHERE id = $1`, [id]);
    await pool.query(`UPDATE documents SET data = data WHERE id = $1`, [id]);
    await pool.query(`DELETE FROM documents WHERE id = $1`, [id]);

    const [created] = await eventsOfType('document.created');
    expect(created.subject).toBe(`collections/notes/documents/${id}`);
    expect(created.payload.document).toMatchObject({ id, collectionId: 'notes', data: { a: 1, b: 2 } });
    expect(created.payload.document.createdAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);

    const updated = await eventsOfType('document.updated');
    expect(updated).toHaveLength(1);
    expect(updated[0].payload.changedFields).toEqual(['b', 'c']);
    expect(updated[0].payload.previousData).toEqual({ a: 1, b: 2 });
    expect(updated[0].payload.document.data).toEqual({ a: 1, b: 3, c: 4 });

    const [deleted] = await eventsOfType('document.deleted');
    expect(deleted.payload.document).toMatchObject({ id, data: { a: 1, b: 3, c: 4 } });
    expect(deleted.payload.deletedAt).toEqual(expect.any(String));
  });

  test('rolled-back write emits nothing', async () => {
    const client = await database.pool.connect();
    try {
      await client.query('BEGIN');
      await client.query(`INSERT INTO collections (id) VALUES ('ghost')`);
      await client.query('ROLLBACK');
    } finally {
      client.release();
    }
    const rows = await eventsOfType('collection.created');
    expect(rows.filter((row) => row.payload.collection.id === 'ghost')).toEqual([]);
  });

  test('collection and user events', async () => {
    const { pool } = database;
    await pool.query(`INSERT INTO collections (id) VALUES ('temp')`);
    await pool.query(`INSERT INTO documents (collection_id) VALUES ('temp')`);
    await pool.query(`DELETE FROM collections WHERE id = 'temp'`);
    const user = await pool.query(
      `INSERT INTO users (email, password_hash) VALUES ('ada@example.com', 'secret-hash') RETURNING id`,
    );

    const deleted = await eventsOfType('collection.deleted');
    expect(deleted.map((row) => row.subject)).toEqual(['collections/temp']);
    const deletedDocuments = await eventsOfType('document.deleted');
    expect(deletedDocuments.some((row) => row.payload.document.collectionId === 'temp')).toBe(true);
    const [created] = await eventsOfType('user.created');
    expect(created.subject).toBe(`users/${user.rows[0].id}`);
    expect(created.payload.user).toMatchObject({ id: user.rows[0].id, email: 'ada@example.com' });
    expect(JSON.stringify(created.payload)).not.toContain('secret-hash');
  });

  test('tansu_emit_event appends and validates the type', async () => {
    const { pool } = database;
    const { rows } = await pool.query(
      `SELECT tansu_emit_event('user.signed_in', 'users/1', '{"method": "password"}') AS id`,
    );
    const stored = await pool.query('SELECT type, payload FROM outbox WHERE event_id = $1', [rows[0].id]);
    expect(stored.rows).toEqual([{ type: 'user.signed_in', payload: { method: 'password' } }]);
    await expect(pool.query(`SELECT tansu_emit_event('User SignedIn', null, '{}')`)).rejects.toThrow(
      /invalid event type "User SignedIn"/,
    );
  });

  test('outbox insert sends one notification per statement', async () => {
    const listener = await database.pool.connect();
    try {
      const payloads: string[] = [];
      listener.on('notification', (message) => payloads.push(message.payload ?? ''));
      await listener.query('LISTEN tansu_outbox');
      const { rows } = await database.pool.query(
        `INSERT INTO outbox (type, payload) VALUES ('test.one', '{}'), ('test.two', '{}') RETURNING id`,
      );
      await waitFor('the notification', () => payloads.length > 0);
      expect(payloads).toEqual([String(Math.max(...rows.map((row) => Number(row.id))))]);
    } finally {
      await listener.query('UNLISTEN *');
      listener.release();
    }
  });
});

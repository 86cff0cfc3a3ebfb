/**
 * The event dispatcher of one tenant: fans outbox events out to deliveries, one per
 * matching enabled event trigger, and runs each delivery at least once with retries.
 *
 * Every step is claimed in PostgreSQL with `FOR UPDATE SKIP LOCKED`, so any number of
 * processes can run a dispatcher on the same tenant database. A claimed attempt holds a
 * lease (`claimed_until`, {@link DEFAULT_LEASE_MS} by default), which the running process
 * renews every third of the lease until the function returns. When a process dies during an
 * attempt, another process claims the delivery again once the lease has passed, so an event
 * may reach a function twice (at-least-once delivery).
 *
 * `maxAttempts` counts total attempts, the first one included. Attempts are counted when
 * claimed, so even attempts lost to crashes never run past the limit. After failed attempt
 * n, the next one waits `backoff_seconds * 2^(n-1)`; after the last one the delivery goes
 * to `dead_letters`.
 */
import pg from 'pg';
import { pino, type Logger } from 'pino';

import { domainError } from '../core/errors.ts';
import { inTransaction, type Database } from '../db/pool-handle.ts';
import { MAX_EVENT_PATTERN_LENGTH } from './event-pattern.ts';

/** The outcome of one function run started by a trigger. */
export interface InvokeResult {
  ok: boolean;
  /** Reason of a failed run, stored as the delivery's `last_error`. */
  error?: string;
  /** Id of the row in `executions`, when the runtime recorded one. */
  executionId?: string;
}

/** An outbox event as handed to a function. */
export interface OutboxEvent {
  /** The event's `event_id`. */
  id: string;
  type: string;
  subject: string | null;
  payload: unknown;
  createdAt: Date;
}

/** One attempt of delivering an event to the function of a trigger. */
export interface EventDelivery {
  /** Delivery id, stable across attempts and replays. */
  id: string;
  tenant: string;
  triggerId: string;
  functionName: string;
  /** This attempt's number in the current cycle, starting at 1. */
  attempt: number;
  /** Total attempts allowed in the cycle. */
  maxAttempts: number;
  /** Whether this cycle was started by a replay from the dead letters. */
  replayed: boolean;
  event: OutboxEvent;
}

/** Runs the function of a delivery and reports the outcome; a thrown error is a failure. */
export type InvokeDelivery = (delivery: EventDelivery) => Promise<InvokeResult>;

/** Options of {@link createEventDispatcher}. */
export interface EventDispatcherOptions {
  /** Pool on the tenant's database. */
  pool: Database;
  /**
   * Connection settings of the LISTEN client, which stays outside the pool; default the
   * pool's own options when `pool` is a `pg.Pool`.
   */
  listenerConfig?: pg.ClientConfig;
  /** Tenant id, for logs and for {@link EventDelivery.tenant}. */
  tenant: string;
  invoke: InvokeDelivery;
  logger?: Logger;
  /** Interval of the polling safety net, in milliseconds; default 1000. */
  pollIntervalMs?: number;
  /** Clock; default `() => new Date()`. */
  now?: () => Date;
  /** Lease of a claimed attempt, in milliseconds; default {@link DEFAULT_LEASE_MS}. */
  leaseMs?: number;
  /** Maximum attempts running at once in this process; default 8. */
  concurrency?: number;
  /** Whether to LISTEN on `tansu_outbox`; default true. Without it only polling wakes. */
  listen?: boolean;
}

/** A running dispatcher. */
export interface EventDispatcher {
  /** Starts listening and polling. */
  start(): Promise<void>;
  /** Stops listening and polling and waits for the attempts in progress to finish. */
  stop(): Promise<void>;
  /** Fans out pending events and starts due deliveries once, without waiting for them. */
  runOnce(): Promise<void>;
}

/** Default lease of a claimed attempt: 30 seconds, renewed while the attempt runs. */
export const DEFAULT_LEASE_MS = 30_000;

/** Channel on which outbox inserts send NOTIFY. */
export const OUTBOX_CHANNEL = 'tansu_outbox';

const FAN_OUT_BATCH = 200;
const MAX_ERROR_LENGTH = 4000;
const LISTEN_RETRY_MS = 1000;
const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Fans out one batch of outbox events in one statement: locks the oldest undispatched events,
 * marks them dispatched and inserts a delivery per matching enabled event trigger. A pattern
 * becomes an anchored regular expression with each `*` segment as `[^.]+`, which is what
 * `matchesEventPattern` in event-pattern.ts does: the table's CHECK allows only `[a-z0-9_]`, `.` and `*`,
 * so no other regex syntax can appear. Parameters: $1 batch size, $2 time.
 */
const FAN_OUT_SQL = `
  WITH events AS MATERIALIZED (
    SELECT id, event_id, type FROM outbox WHERE dispatched_at IS NULL
    ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED
  ), marked AS (
    UPDATE outbox SET dispatched_at = $2 FROM events WHERE outbox.id = events.id
  ), inserted AS (
    INSERT INTO deliveries (event_id, trigger_id, next_attempt_at, created_at, updated_at)
    SELECT e.event_id, t.id, $2, $2, $2
    FROM events e
    JOIN triggers t ON t.kind = 'event' AND t.enabled
      AND length(t.event_pattern) <= ${MAX_EVENT_PATTERN_LENGTH}
      AND e.type ~ ('^' || replace(replace(t.event_pattern, '.', '\\.'), '*', '[^.]+') || '$')
    ON CONFLICT (event_id, trigger_id) DO NOTHING
    RETURNING 1
  )
  SELECT (SELECT count(*) FROM events)::int AS events, (SELECT count(*) FROM inserted)::int AS deliveries`;

/** The delivery's columns plus what an attempt needs from its trigger and its event. */
const ATTEMPT_COLUMNS = `
  t.function_name, t.max_attempts, t.backoff_seconds,
  o.type, o.subject, o.payload, o.created_at AS event_created_at,
  EXISTS (SELECT 1 FROM dead_letters dl
          WHERE dl.delivery_id = d.id AND dl.replayed_at IS NOT NULL) AS replayed`;

/** Deliveries whose next attempt may start: pending and due, or running with an expired lease. */
const DUE_CONDITION = `t.enabled
  AND ((d.status = 'pending' AND d.next_attempt_at <= $1)
    OR (d.status = 'running' AND d.claimed_until <= $1))`;

/**
 * Claims up to $2 due deliveries with attempts left in one statement: locks them, counts the
 * attempt and sets the lease ($3), and returns what the attempts need, with the status from
 * before the claim as `status`. Parameters: $1 time, $2 limit, $3 lease end.
 *
 * Pending and expired deliveries are looked up separately, because each then reads its own
 * partial index in order and stops after $2 rows. With one OR condition PostgreSQL reads and
 * sorts every due row, which made each claim cost time in proportion to the backlog.
 */
const CLAIM_SQL = `
  WITH pending AS MATERIALIZED (
    SELECT d.id, d.status, d.next_attempt_at FROM deliveries d JOIN triggers t ON t.id = d.trigger_id
    WHERE t.enabled AND d.attempts < t.max_attempts
      AND d.status = 'pending' AND d.next_attempt_at <= $1
    ORDER BY d.next_attempt_at LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
  ), expired AS MATERIALIZED (
    SELECT d.id, d.status, d.next_attempt_at FROM deliveries d JOIN triggers t ON t.id = d.trigger_id
    WHERE t.enabled AND d.attempts < t.max_attempts
      AND d.status = 'running' AND d.claimed_until <= $1
    ORDER BY d.claimed_until LIMIT $2
    FOR UPDATE OF d SKIP LOCKED
  ), due AS (
    SELECT id, status FROM (SELECT * FROM pending UNION ALL SELECT * FROM expired) AS both_kinds
    ORDER BY next_attempt_at LIMIT $2
  ), claimed AS (
    UPDATE deliveries d SET status = 'running', attempts = d.attempts + 1,
           claimed_until = $3, updated_at = $1
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.event_id, d.trigger_id, d.attempts, d.last_error, due.status
  )
  SELECT d.*, ${ATTEMPT_COLUMNS}
  FROM claimed d
  JOIN triggers t ON t.id = d.trigger_id
  JOIN outbox o ON o.event_id = d.event_id`;

/**
 * Moves due deliveries that have no attempt left to the dead letters in one statement: a lease
 * that ran out on the last allowed attempt counts as a failed attempt. Parameters: $1 time.
 */
const EXPIRE_SQL = `
  WITH expired AS MATERIALIZED (
    SELECT d.id, d.event_id, d.trigger_id, d.attempts,
           'attempt ' || d.attempts || ' did not finish before its lease expired' AS error,
           t.function_name, o.type, o.payload
    FROM deliveries d
    JOIN triggers t ON t.id = d.trigger_id
    JOIN outbox o ON o.event_id = d.event_id
    WHERE ${DUE_CONDITION} AND d.attempts >= t.max_attempts
    FOR UPDATE OF d SKIP LOCKED
  ), dead AS (
    UPDATE deliveries d SET status = 'dead', claimed_until = NULL, last_error = e.error, updated_at = $1
    FROM expired e WHERE d.id = e.id
  )
  INSERT INTO dead_letters
    (delivery_id, event_id, trigger_id, function_name, event_type, event_payload,
     attempts, last_error, created_at, failed_at)
  SELECT id, event_id, trigger_id, function_name, type, payload, attempts, error, $1, $1
  FROM expired
  ON CONFLICT (delivery_id) DO UPDATE SET
    attempts = excluded.attempts, last_error = excluded.last_error,
    failed_at = excluded.failed_at, replayed_at = NULL
  RETURNING delivery_id, function_name, attempts`;

/**
 * Records succeeded attempts in one statement. Each row only changes while its delivery is
 * still in the attempt that ran, so a late result from an expired lease changes nothing.
 * Parameters: $1 delivery ids, $2 attempts, $3 execution ids, $4 time.
 */
const SUCCEEDED_SQL = `
  UPDATE deliveries d SET status = 'succeeded', claimed_until = NULL,
         last_execution_id = r.execution_id, updated_at = $4
  FROM unnest($1::uuid[], $2::int[], $3::uuid[]) AS r (id, attempts, execution_id)
  WHERE d.id = r.id AND d.status = 'running' AND d.attempts = r.attempts`;

interface ClaimedRow {
  id: string;
  event_id: string;
  trigger_id: string;
  attempts: number;
  status: string;
  last_error: string | null;
  function_name: string;
  max_attempts: number;
  backoff_seconds: number;
  type: string;
  subject: string | null;
  payload: unknown;
  event_created_at: Date;
  replayed: boolean;
}

/** Work requested of the next dispatcher pass. */
interface PendingWork {
  /** Outbox events may wait for fan-out. */
  fanOut: boolean;
  /** Deliveries without attempts left may be due for the dead letters. */
  expire: boolean;
  /** Deliveries may be due for an attempt. */
  due: boolean;
}

const EVERYTHING: PendingWork = { fanOut: true, expire: true, due: true };

/** A succeeded attempt waiting for the next batched write. */
interface PendingSuccess {
  row: ClaimedRow;
  executionId: string | null;
  resolve: () => void;
  reject: (error: unknown) => void;
}

function truncateError(message: string): string {
  return message.length > MAX_ERROR_LENGTH ? `${message.slice(0, MAX_ERROR_LENGTH)}…` : message;
}

/**
 * Moves a delivery to `dead` and writes or updates its dead letter, in the caller's
 * transaction. The update only applies while the delivery is still in the attempt the
 * caller ran, so a late result from an expired lease changes nothing.
 */
async function writeDeadLetter(
  client: pg.ClientBase,
  row: ClaimedRow,
  attempts: number,
  error: string,
  now: Date,
): Promise<boolean> {
  const updated = await client.query(
    `UPDATE deliveries SET status = 'dead', claimed_until = NULL, last_error = $3, updated_at = $4
     WHERE id = $1 AND status = 'running' AND attempts = $2`,
    [row.id, attempts, error, now],
  );
  if (updated.rowCount !== 1) return false;
  await client.query(
    `INSERT INTO dead_letters
       (delivery_id, event_id, trigger_id, function_name, event_type, event_payload,
        attempts, last_error, created_at, failed_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
     ON CONFLICT (delivery_id) DO UPDATE SET
       attempts = excluded.attempts, last_error = excluded.last_error,
       failed_at = excluded.failed_at, replayed_at = NULL`,
    [row.id, row.event_id, row.trigger_id, row.function_name, row.type,
      JSON.stringify(row.payload), attempts, error, now],
  );
  return true;
}

/**
 * Creates the event dispatcher of one tenant. Options are checked here, so a bad value
 * fails at start.
 */
export function createEventDispatcher(options: EventDispatcherOptions): EventDispatcher {
  const { pool, tenant, invoke } = options;
  const logger = (options.logger ?? pino({ level: 'silent' })).child({ tenant });
  const pollIntervalMs = options.pollIntervalMs ?? 1000;
  const now = options.now ?? (() => new Date());
  const leaseMs = options.leaseMs ?? DEFAULT_LEASE_MS;
  const concurrency = options.concurrency ?? 8;
  const listen = options.listen ?? true;
  for (const [name, value] of Object.entries({ pollIntervalMs, leaseMs, concurrency })) {
    if (!Number.isFinite(value) || value <= 0) {
      throw new Error(`event dispatcher option ${name} must be a positive number, got ${value}`);
    }
  }

  const inFlight = new Set<Promise<void>>();
  const work: PendingWork = { fanOut: false, expire: false, due: false };
  let dueSignals = 0;
  const touched = new Set<string>();
  let touchedAt: Date | undefined;
  let touching: Promise<void> | undefined;
  const succeeded: PendingSuccess[] = [];
  let writingSuccesses = false;
  let running = false;
  let pumping: Promise<void> | undefined;
  let pumpAgain = false;
  let timer: NodeJS.Timeout | undefined;
  let listener: pg.Client | undefined;
  let listenerRetry: NodeJS.Timeout | undefined;
  const wakeTimers = new Set<NodeJS.Timeout>();

  /** Moves undispatched outbox events to deliveries; returns how many events it handled. */
  async function fanOut(): Promise<number> {
    const { rows } = await pool.query<{ events: number; deliveries: number }>(FAN_OUT_SQL, [FAN_OUT_BATCH, now()]);
    const { events, deliveries } = rows[0];
    if (events > 0) logger.debug({ events, deliveries }, 'fanned out outbox events');
    if (deliveries > 0) {
      work.due = true;
      dueSignals += 1;
    }
    return events;
  }

  /** Claims up to `limit` due deliveries with attempts left and returns them. */
  async function claim(limit: number): Promise<ClaimedRow[]> {
    const at = now();
    const { rows } = await pool.query<ClaimedRow>(CLAIM_SQL, [at, limit, new Date(at.getTime() + leaseMs)]);
    for (const row of rows) {
      if (row.status === 'running') {
        logger.warn({ delivery: row.id, function: row.function_name, attempt: row.attempts - 1 },
          'event delivery lease expired; claiming it again');
      }
    }
    if (rows.length > 0) touchTriggers(rows.map((row) => row.trigger_id), at);
    return rows;
  }

  /** Moves due deliveries without attempts left to the dead letters. */
  async function expire(): Promise<void> {
    const { rows } = await pool.query<{ delivery_id: string; function_name: string; attempts: number }>(
      EXPIRE_SQL,
      [now()],
    );
    for (const row of rows) {
      logger.warn({ delivery: row.delivery_id, function: row.function_name, attempts: row.attempts },
        'event delivery lease expired on its last attempt; moved to dead letters');
    }
  }

  /**
   * Sets `last_invoked_at` of the triggers of claimed deliveries after their attempts have
   * started, since once-only claiming does not depend on it. Calls that arrive while an
   * update runs are folded into one more update.
   */
  function touchTriggers(triggerIds: string[], at: Date): void {
    for (const id of triggerIds) touched.add(id);
    if (!touchedAt || at > touchedAt) touchedAt = at;
    if (touching) return;
    touching = (async () => {
      while (touched.size > 0 && touchedAt) {
        const ids = [...touched].sort(); // Sorted, so concurrent updates lock in one order.
        const time = touchedAt;
        touched.clear();
        touchedAt = undefined;
        try {
          await pool.query(
            `UPDATE triggers SET last_invoked_at = $2 WHERE id = ANY($1::uuid[])
               AND (last_invoked_at IS NULL OR last_invoked_at < $2)`,
            [ids, time],
          );
        } catch (error) {
          logger.warn({ err: error }, 'failed to update last_invoked_at of event triggers');
        }
      }
    })().finally(() => {
      touching = undefined;
    });
  }

  /**
   * Records a succeeded attempt. Results that arrive while a write runs are written together
   * by the next one, so under load one statement records many attempts.
   */
  function recordSuccess(row: ClaimedRow, executionId: string | null): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      succeeded.push({ row, executionId, resolve, reject });
      if (!writingSuccesses) void writeSuccesses();
    });
  }

  async function writeSuccesses(): Promise<void> {
    writingSuccesses = true;
    try {
      while (succeeded.length > 0) {
        const batch = succeeded.splice(0);
        try {
          await pool.query(SUCCEEDED_SQL, [
            batch.map((entry) => entry.row.id),
            batch.map((entry) => entry.row.attempts),
            batch.map((entry) => entry.executionId),
            now(),
          ]);
          for (const entry of batch) entry.resolve();
        } catch (error) {
          for (const entry of batch) entry.reject(error);
        }
      }
    } finally {
      writingSuccesses = false;
    }
  }

  async function recordResult(row: ClaimedRow, result: InvokeResult): Promise<void> {
    const at = now();
    const attempt = row.attempts;
    let executionId = result.executionId ?? null;
    if (executionId !== null && !uuidPattern.test(executionId)) {
      logger.warn({ delivery: row.id, executionId }, 'invoke returned an execution id that is not a UUID; not storing it');
      executionId = null;
    }

    if (result.ok) {
      await recordSuccess(row, executionId);
      return;
    }

    const error = truncateError(result.error ?? 'the function failed without an error message');
    if (attempt < row.max_attempts) {
      const delayMs = row.backoff_seconds * 1000 * 2 ** (attempt - 1);
      await pool.query(
        `UPDATE deliveries SET status = 'pending', claimed_until = NULL, last_error = $3,
                last_execution_id = $4, next_attempt_at = $5, updated_at = $6
         WHERE id = $1 AND status = 'running' AND attempts = $2`,
        [row.id, attempt, error, executionId, new Date(at.getTime() + delayMs), at],
      );
      logger.info({ delivery: row.id, function: row.function_name, attempt, retryInMs: delayMs, error },
        'event delivery failed; retrying');
      scheduleWake(delayMs);
      return;
    }

    await inTransaction(pool, async (client) => {
      if (executionId !== null) {
        await client.query('UPDATE deliveries SET last_execution_id = $2 WHERE id = $1', [row.id, executionId]);
      }
      await writeDeadLetter(client, row, attempt, error, at);
    });
    logger.warn({ delivery: row.id, function: row.function_name, attempts: attempt, error },
      'event delivery failed on its last attempt; moved to dead letters');
  }

  async function attempt(row: ClaimedRow): Promise<void> {
    const delivery: EventDelivery = {
      id: row.id,
      tenant,
      triggerId: row.trigger_id,
      functionName: row.function_name,
      attempt: row.attempts,
      maxAttempts: row.max_attempts,
      replayed: row.replayed,
      event: {
        id: row.event_id,
        type: row.type,
        subject: row.subject,
        payload: row.payload,
        createdAt: row.event_created_at,
      },
    };
    // Renews the lease while the function runs, so a run longer than the lease is not claimed
    // and started again by another process; a dead process stops renewing and its claim
    // expires within one lease.
    const renewal = setInterval(() => {
      pool
        .query("UPDATE deliveries SET claimed_until = $2 WHERE id = $1 AND status = 'running' AND attempts = $3", [
          row.id,
          new Date(now().getTime() + leaseMs),
          row.attempts,
        ])
        .catch((error) => logger.warn({ err: error, delivery: row.id }, 'renewing an event delivery lease failed'));
    }, Math.max(250, Math.floor(leaseMs / 3)));
    let result: InvokeResult;
    try {
      result = await invoke(delivery);
    } catch (error) {
      result = { ok: false, error: error instanceof Error ? error.message : String(error) };
    } finally {
      clearInterval(renewal);
    }
    try {
      await recordResult(row, result);
    } catch (error) {
      // The lease brings the delivery back, so the attempt is retried, not lost.
      logger.error({ err: error, delivery: row.id }, 'failed to record an event delivery result');
    }
  }

  async function pumpOnce(): Promise<void> {
    if (work.fanOut) {
      work.fanOut = false;
      while ((await fanOut()) === FAN_OUT_BATCH) {
        // Keep going while full batches come back.
      }
    }
    if (work.expire) {
      work.expire = false;
      await expire();
    }
    const free = concurrency - inFlight.size;
    // Under load, waiting until a quarter of the slots are free claims in batches, so a claim
    // statement is not spent on every finished attempt.
    const minimumClaim = inFlight.size === 0 ? 1 : Math.ceil(concurrency / 4);
    if (free < minimumClaim || !work.due) return;
    const signals = dueSignals;
    const rows = await claim(free);
    // Nothing more is due until the next signal, unless one arrived during the claim.
    if (rows.length < free && signals === dueSignals) work.due = false;
    for (const row of rows) {
      const task = attempt(row).finally(() => {
        inFlight.delete(task);
        if (running && work.due) void pump({});
      });
      inFlight.add(task);
    }
  }

  /**
   * Records the `requested` work and runs {@link pumpOnce}, folding calls that arrive while it
   * runs into one more pass.
   */
  function pump(requested: Partial<PendingWork>): Promise<void> {
    if (requested.fanOut) work.fanOut = true;
    if (requested.expire) work.expire = true;
    if (requested.due) {
      work.due = true;
      dueSignals += 1;
    }
    if (pumping) {
      pumpAgain = true;
      return pumping;
    }
    pumping = (async () => {
      do {
        pumpAgain = false;
        try {
          await pumpOnce();
        } catch (error) {
          // The next poll requests every kind of work again.
          logger.error({ err: error }, 'event dispatcher pass failed; retrying at the next poll');
        }
      } while (pumpAgain);
    })().finally(() => {
      pumping = undefined;
    });
    return pumping;
  }

  function scheduleWake(delayMs: number): void {
    if (!running) return;
    const wakeTimer = setTimeout(() => {
      wakeTimers.delete(wakeTimer);
      void pump({ due: true });
    }, Math.max(0, delayMs));
    wakeTimer.unref();
    wakeTimers.add(wakeTimer);
  }

  async function poll(): Promise<void> {
    await pump(EVERYTHING);
    if (running) timer = setTimeout(() => void poll(), pollIntervalMs);
  }

  async function connectListener(): Promise<void> {
    const client = new pg.Client(options.listenerConfig ?? (pool as Partial<pg.Pool>).options);
    // An outbox insert or a replay: both may have made deliveries due.
    client.on('notification', () => void pump({ fanOut: true, due: true }));
    client.on('error', (error) => {
      logger.warn({ err: error }, 'outbox listener connection failed; reconnecting');
      client.end().catch(() => undefined);
      if (listener === client) listener = undefined;
      retryListener();
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${OUTBOX_CHANNEL}`);
    } catch (error) {
      client.end().catch(() => undefined);
      throw error;
    }
    if (!running) {
      await client.end();
      return;
    }
    listener = client;
    // Events written while the listener was away are picked up now rather than at the next poll.
    void pump({ fanOut: true, due: true });
  }

  function retryListener(): void {
    if (!running || listenerRetry) return;
    listenerRetry = setTimeout(() => {
      listenerRetry = undefined;
      connectListener().catch((error) => {
        logger.warn({ err: error }, 'outbox listener failed to connect; retrying');
        retryListener();
      });
    }, LISTEN_RETRY_MS);
  }

  return {
    async start() {
      if (running) return;
      running = true;
      if (listen) {
        try {
          await connectListener();
        } catch (error) {
          logger.warn({ err: error }, 'outbox listener failed to connect; polling until it does');
          retryListener();
        }
      }
      void poll();
      logger.info({ pollIntervalMs, leaseMs, concurrency }, 'event dispatcher started');
    },

    async stop() {
      if (!running) return;
      running = false;
      clearTimeout(timer);
      clearTimeout(listenerRetry);
      listenerRetry = undefined;
      for (const wakeTimer of wakeTimers) clearTimeout(wakeTimer);
      wakeTimers.clear();
      const client = listener;
      listener = undefined;
      await client?.end().catch(() => undefined);
      await pumping;
      await Promise.all(inFlight);
      await touching;
      logger.info('event dispatcher stopped');
    },

    runOnce: () => pump(EVERYTHING),
  };
}

/** Selection of the dead letters that {@link replayDeadLetters} replays. */
export interface ReplayDeadLettersRequest {
  /** Dead-letter ids; when given together with `filter`, both must match. */
  ids?: string[];
  /** Matches on the function and on when the delivery failed (`since <= failed_at < until`). */
  filter?: { functionName?: string; since?: Date; until?: Date };
  /** Clock; default `() => new Date()`. */
  now?: () => Date;
}

/**
 * Starts a new attempt cycle for each matching dead letter whose delivery is dead and not
 * already replayed: the delivery goes back to pending with 0 attempts, and the dead letter
 * gets `replayed_at`. If the new cycle fails too, the same dead-letter row is updated.
 * Returns the ids of the replayed dead letters. Throws INVALID_ARGUMENT when neither `ids`
 * nor `filter` is given, so that replaying everything takes an explicit empty filter.
 */
export async function replayDeadLetters(
  pool: Database,
  request: ReplayDeadLettersRequest,
): Promise<string[]> {
  const { ids, filter } = request;
  if (ids === undefined && filter === undefined) {
    throw domainError('INVALID_ARGUMENT', 'name the dead letters to replay by ids or a filter; an empty filter replays all', {
      metadata: { field: 'filter' },
    });
  }
  const invalidId = ids?.find((id) => !uuidPattern.test(id));
  if (invalidId !== undefined) {
    throw domainError('INVALID_ARGUMENT', `dead-letter id "${invalidId}" is not a UUID`, {
      metadata: { field: 'ids' },
    });
  }
  const at = (request.now ?? (() => new Date()))();

  return inTransaction(pool, async (client) => {
    const chosen = await client.query<{ id: string; delivery_id: string }>(
      `SELECT dl.id, dl.delivery_id FROM dead_letters dl
       JOIN deliveries d ON d.id = dl.delivery_id
       WHERE dl.replayed_at IS NULL AND d.status = 'dead'
         AND ($1::uuid[] IS NULL OR dl.id = ANY($1::uuid[]))
         AND ($2::text IS NULL OR dl.function_name = $2)
         AND ($3::timestamptz IS NULL OR dl.failed_at >= $3)
         AND ($4::timestamptz IS NULL OR dl.failed_at < $4)
       ORDER BY dl.failed_at
       FOR UPDATE OF dl, d`,
      [ids ?? null, filter?.functionName ?? null, filter?.since ?? null, filter?.until ?? null],
    );
    if (chosen.rows.length === 0) return [];

    await client.query(
      `UPDATE deliveries SET status = 'pending', attempts = 0, next_attempt_at = $2,
              claimed_until = NULL, updated_at = $2
       WHERE id = ANY($1::uuid[])`,
      [chosen.rows.map((row) => row.delivery_id), at],
    );
    await client.query(
      `UPDATE dead_letters SET replayed_at = $2, replay_count = replay_count + 1
       WHERE id = ANY($1::uuid[])`,
      [chosen.rows.map((row) => row.id), at],
    );
    // Wakes listening dispatchers at commit instead of at their next poll.
    await client.query('SELECT pg_notify($1, $2)', [OUTBOX_CHANNEL, 'replay']);
    return chosen.rows.map((row) => row.id);
  });
}

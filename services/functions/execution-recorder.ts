import type { Logger } from '../core/logger.ts';
import type { Database } from '../db/pool-handle.ts';
import type { ExecutionLog, ExecutionStatus } from './runtime/runtime.ts';

/** One finished execution, as it goes into `executions`. */
export interface ExecutionRow {
  id: string;
  functionName: string;
  version: number;
  triggerType: string;
  triggerSource: string | null;
  startedAt: Date;
  durationMs: number;
  status: ExecutionStatus;
  error: string | null;
  logs: ExecutionLog[];
}

/**
 * Writes execution rows off the response path. Rows of one tenant queue up while a write is in
 * flight and go out together in one INSERT, so under load the commits are shared.
 *
 * A row is in the table once the promise of `record` resolves. `flush` waits for a tenant's
 * queued rows, so a read in this process finds every execution this process reported; a read
 * through another replica may miss rows of the last few milliseconds. `close` waits for every
 * queued row, so a normal shutdown loses none.
 *
 * NOTE: rows still queued when the process is killed are lost. Callers that must not lose a
 * record (trigger deliveries, which are retried) await `record` before they report success.
 */
export interface ExecutionRecorder {
  /** Queues a row; resolves when it is written, rejects (and logs) when writing it failed. */
  record(tenant: string, db: Database, row: ExecutionRow): Promise<void>;
  /** Rows of `tenant` queued and not yet written. */
  pendingRows(tenant: string): number;
  /** Waits until the rows of `tenant` queued so far are written or have failed. */
  flush(tenant: string): Promise<void>;
  /** Waits until every queued row is written or has failed. */
  close(): Promise<void>;
}

/** Rows in one INSERT; ten parameters each keeps a statement far below PostgreSQL's 65,535. */
const MAX_BATCH_ROWS = 200;

interface Queued {
  row: ExecutionRow;
  resolve: () => void;
  reject: (error: unknown) => void;
}

interface TenantQueue {
  db: Database;
  queued: Queued[];
  writing: Promise<void> | undefined;
}

/** Creates a recorder that logs failed writes to `logger`. */
export function createExecutionRecorder(logger: Logger): ExecutionRecorder {
  const queues = new Map<string, TenantQueue>();

  async function drain(tenant: string, queue: TenantQueue): Promise<void> {
    // Lets the caller send its response before the INSERT goes out, and gathers the rows of
    // calls that end in the same turn of the event loop.
    await new Promise((resolve) => setImmediate(resolve));
    while (queue.queued.length > 0) {
      const batch = queue.queued.splice(0, MAX_BATCH_ROWS);
      try {
        await insertRows(queue.db, batch.map((item) => item.row));
        for (const item of batch) item.resolve();
      } catch (error) {
        // One bad row (say, of a function deleted meanwhile) must not cost the others.
        if (batch.length === 1) fail(tenant, batch[0]!, error);
        else for (const item of batch) await insertRows(queue.db, [item.row]).then(item.resolve, (single) => fail(tenant, item, single));
      }
    }
    queue.writing = undefined;
    if (queue.queued.length === 0) queues.delete(tenant);
  }

  function fail(tenant: string, item: Queued, error: unknown): void {
    logger.error(
      { err: error, tenant, function: item.row.functionName, execution: item.row.id },
      'writing an execution record failed',
    );
    item.reject(error);
  }

  return {
    record(tenant, db, row) {
      let queue = queues.get(tenant);
      if (!queue) {
        queue = { db, queued: [], writing: undefined };
        queues.set(tenant, queue);
      }
      const written = new Promise<void>((resolve, reject) => queue.queued.push({ row, resolve, reject }));
      queue.writing ??= drain(tenant, queue);
      return written;
    },

    pendingRows(tenant) {
      return queues.get(tenant)?.queued.length ?? 0;
    },

    async flush(tenant) {
      await queues.get(tenant)?.writing;
    },

    async close() {
      while (queues.size > 0) await Promise.all([...queues.values()].map((queue) => queue.writing));
    },
  };
}

/**
 * Replaces NUL, which PostgreSQL cannot store in text or jsonb, with U+FFFD. Function output is
 * not ours to reject, and one NUL in a log line must not lose the whole execution record. In
 * JSON text the character appears escaped as `\u0000`, which jsonb rejects as well.
 */
function withoutNul(text: string): string {
  return text.replaceAll('\0', '\uFFFD').replaceAll('\\u0000', '\\uFFFD');
}

async function insertRows(db: Database, rows: ExecutionRow[]): Promise<void> {
  const values: unknown[] = [];
  const tuples = rows.map((row, index) => {
    values.push(
      row.id,
      row.functionName,
      row.version,
      row.triggerType,
      row.triggerSource,
      row.startedAt,
      row.durationMs,
      row.status,
      row.error === null ? null : withoutNul(row.error),
      withoutNul(JSON.stringify(row.logs)),
    );
    const first = index * 10;
    return `(${Array.from({ length: 10 }, (_, column) => `$${first + column + 1}`).join(', ')})`;
  });
  await db.query(
    `INSERT INTO executions
       (id, function_name, version, trigger_type, trigger_source, started_at, duration_ms, status, error, logs)
     VALUES ${tuples.join(', ')}`,
    values,
  );
}

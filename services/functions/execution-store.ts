import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken } from '../core/pagination.ts';
import type { Database } from '../db/pool-handle.ts';
import type { ExecutionLog } from './runtime/runtime.ts';

/** Execution statuses a list may filter by. */
export const EXECUTION_STATUSES = ['succeeded', 'error', 'timeout', 'cpu_limit', 'memory_limit'] as const;

/** A row of `executions`. */
export interface ExecutionRecord {
  id: string;
  functionName: string;
  version: number;
  triggerType: string;
  triggerSource: string | null;
  startedAt: Date;
  durationMs: number | null;
  status: string;
  error: string | null;
  logs: ExecutionLog[];
}

const EXECUTION_COLUMNS = `id, function_name AS "functionName", version, trigger_type AS "triggerType",
  trigger_source AS "triggerSource", started_at AS "startedAt", duration_ms AS "durationMs", status, error, logs`;

/** Filter and page of an execution list. */
export interface ExecutionQuery {
  functionName: string;
  status: string;
  startTime?: Date;
  endTime?: Date;
  pageSize: number;
  pageToken: string;
}

/**
 * Lists a function's executions, newest first, keyset-paginated on (start time, id). The page
 * token is bound to the function name, so a token of another list is rejected.
 */
export async function listExecutions(
  db: Database,
  query: ExecutionQuery,
): Promise<{ executions: ExecutionRecord[]; nextPageToken: string }> {
  if (query.status && !(EXECUTION_STATUSES as readonly string[]).includes(query.status)) {
    throw invalidArgument('status', `status must be one of ${EXECUTION_STATUSES.join(', ')}, got "${query.status}"`);
  }
  const kind = `executions:${query.functionName}`;
  const cursor = decodePageToken(query.pageToken, kind);
  const [afterTime, afterId] = cursor ? cursor.split('|') : [null, null];

  const { rows } = await db.query<ExecutionRecord & { cursorTime: string }>(
    `SELECT ${EXECUTION_COLUMNS}, started_at::text AS "cursorTime" FROM executions
      WHERE function_name = $1
        AND ($2 = '' OR status = $2)
        AND ($3::timestamptz IS NULL OR started_at >= $3)
        AND ($4::timestamptz IS NULL OR started_at < $4)
        AND ($5::timestamptz IS NULL OR (started_at, id) < ($5::timestamptz, $6::uuid))
      ORDER BY started_at DESC, id DESC
      LIMIT $7`,
    [query.functionName, query.status, query.startTime ?? null, query.endTime ?? null, afterTime, afterId, query.pageSize + 1],
  );
  const page = rows.slice(0, query.pageSize);
  const last = page[page.length - 1];
  const nextPageToken = rows.length > query.pageSize && last ? encodePageToken(kind, `${last.cursorTime}|${last.id}`) : '';
  return { executions: page, nextPageToken };
}

/** Reads one execution of a function; NOT_FOUND when there is none with that id. */
export async function getExecution(db: Database, functionName: string, id: string): Promise<ExecutionRecord> {
  const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
  const { rows } = uuid.test(id)
    ? await db.query<ExecutionRecord>(`SELECT ${EXECUTION_COLUMNS} FROM executions WHERE function_name = $1 AND id = $2`, [functionName, id])
    : { rows: [] };
  if (!rows[0]) {
    throw domainError('NOT_FOUND', `function "${functionName}" has no execution "${id.slice(0, 64)}"`, {
      metadata: { execution: id.slice(0, 64) },
    });
  }
  return rows[0];
}

import { Code, ConnectError } from '@connectrpc/connect';

/** Node.js socket errors that mean PostgreSQL cannot be reached. */
const CONNECTION_ERROR_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND']);

/**
 * Maps a failure of PostgreSQL itself to the code a client can act on: UNAVAILABLE (retry
 * later) for a lost or refused connection, a server shutting down or a database that was
 * dropped under the request (a tenant deleted mid-call). Returns undefined for anything else,
 * which stays INTERNAL. SQLSTATE classes: 08 connection exception, 57P admin shutdown and
 * crash, 3D000 invalid catalog name.
 */
export function connectErrorFromDatabase(error: unknown): ConnectError | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  const message = (error as { message?: unknown }).message;
  if (typeof code === 'string') {
    if (code.startsWith('08') || code.startsWith('57P') || CONNECTION_ERROR_CODES.has(code)) {
      return new ConnectError('the database is unavailable; retry later', Code.Unavailable, undefined, undefined, error);
    }
    // 57014: query_canceled, here by statement_timeout.
    if (code === '57014') {
      return new ConnectError('the database query timed out; retry later', Code.Unavailable, undefined, undefined, error);
    }
    if (code === '3D000') {
      return new ConnectError('the tenant database no longer exists; the tenant may have been deleted', Code.Unavailable, undefined, undefined, error);
    }
  }
  if (typeof message === 'string' && /Connection terminated|connection timeout|timeout exceeded when trying to connect|Query read timeout|Cannot use a pool after calling end/i.test(message)) {
    return new ConnectError('the database is unavailable; retry later', Code.Unavailable, undefined, undefined, error);
  }
  return undefined;
}

/**
 * Returns the loggable part of a database error: message and code only. A pg client error
 * can carry the whole client object, whose fields include the connection's secret key.
 */
export function databaseErrorSummary(error: unknown): { message: string; code?: string } {
  if (typeof error !== 'object' || error === null) return { message: String(error) };
  const { message, code } = error as { message?: unknown; code?: unknown };
  return { message: String(message), code: typeof code === 'string' ? code : undefined };
}

/**
 * Timeouts of every pool the server opens, so a stalled PostgreSQL makes requests fail as
 * UNAVAILABLE instead of hanging: 5 s to get a connection and 30 s for a query, on the client
 * (`query_timeout`, which also covers a server that stopped answering) and on the server
 * (`statement_timeout`, which frees the backend).
 */
export const POOL_TIMEOUTS = {
  connectionTimeoutMillis: 5_000,
  query_timeout: 30_000,
  statement_timeout: 30_000,
} as const;

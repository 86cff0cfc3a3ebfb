import { createHash } from 'node:crypto';

import pg from 'pg';

import { compileFunction } from '../../services/functions/compile.ts';
import { tenantDatabaseName } from '../../services/platform/tenant-id.ts';
import { urlForDatabase } from './database.ts';

/**
 * Deploys a JavaScript function into a tenant database as version 1 and makes it active,
 * the way the Functions service stores a deployment. Tests use it to run real functions
 * through the real runtime.
 */
export async function deployFunction(prefix: string, tenant: string, name: string, source: string): Promise<void> {
  const { code } = compileFunction(source, 'javascript');
  const client = new pg.Client(urlForDatabase(tenantDatabaseName(prefix, tenant)));
  await client.connect();
  try {
    await client.query('BEGIN');
    await client.query('INSERT INTO functions (name, active_version) VALUES ($1, 1)', [name]);
    await client.query(
      `INSERT INTO function_versions (function_name, version, source, language, compiled, content_hash, author)
       VALUES ($1, 1, $2, 'javascript', $3, $4, 'test')`,
      [name, source, code, createHash('sha256').update(source).digest('hex')],
    );
    await client.query('COMMIT');
  } finally {
    await client.end();
  }
}

/** One row of `executions`, as the e2e tests read it. */
export interface ExecutionRow {
  function_name: string;
  trigger_type: string;
  trigger_source: string | null;
  status: string;
  started_at: Date;
  error: string | null;
}

/** Runs a query on a tenant database over a short-lived connection. */
export async function queryTenant<T extends pg.QueryResultRow = any>(
  prefix: string,
  tenant: string,
  sql: string,
  values: unknown[] = [],
): Promise<T[]> {
  const client = new pg.Client(urlForDatabase(tenantDatabaseName(prefix, tenant)));
  await client.connect();
  try {
    return (await client.query<T>(sql, values)).rows;
  } finally {
    await client.end();
  }
}

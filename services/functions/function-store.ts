import { createHash } from 'node:crypto';

import { domainError, invalidArgument } from '../core/errors.ts';
import { inTransaction, type Database } from '../db/pool-handle.ts';
import type { CompiledFunction, FunctionLanguage } from './compile.ts';
import type { StoredLimits } from './limits.ts';

/** Function names, as the `functions` table checks them. */
export const FUNCTION_NAME_PATTERN = /^[a-z][a-z0-9-]{0,62}$/;

/** A row of `functions`. */
export interface FunctionRecord {
  name: string;
  public: boolean;
  activeVersion: number | null;
  timeoutMs: number | null;
  memoryMb: number | null;
  createdAt: Date;
  updatedAt: Date;
}

/** A row of `function_versions`; `source` is empty where a list left it out. */
export interface FunctionVersionRecord {
  functionName: string;
  version: number;
  source: string;
  language: FunctionLanguage;
  contentHash: string;
  author: string;
  createdAt: Date;
}

const SELECT_FUNCTION = `SELECT name, public, active_version AS "activeVersion", timeout_ms AS "timeoutMs",
  memory_mb AS "memoryMb", created_at AS "createdAt", updated_at AS "updatedAt" FROM functions`;

const VERSION_COLUMNS = `function_name AS "functionName", version, language, content_hash AS "contentHash",
  author, created_at AS "createdAt"`;

/** Rejects a malformed function name with INVALID_ARGUMENT on `field`. */
export function assertFunctionName(name: string, field = 'name'): void {
  if (!FUNCTION_NAME_PATTERN.test(name)) {
    throw invalidArgument(
      field,
      `${field} "${name.slice(0, 64)}" is not a valid function name: use a lowercase letter, then up to 62 lowercase letters, digits and hyphens`,
    );
  }
}

/** Reads one function; NOT_FOUND when it does not exist. */
export async function getFunction(db: Pick<Database, 'query'>, name: string): Promise<FunctionRecord> {
  const { rows } = await db.query<FunctionRecord>(`${SELECT_FUNCTION} WHERE name = $1`, [name]);
  if (!rows[0]) throw functionNotFound(name);
  return rows[0];
}

/** Lists functions with names after `after`, ordered by name. */
export async function listFunctions(db: Database, after: string, limit: number): Promise<FunctionRecord[]> {
  const { rows } = await db.query<FunctionRecord>(`${SELECT_FUNCTION} WHERE name > $1 ORDER BY name LIMIT $2`, [after, limit]);
  return rows;
}

/** Inserts a function with no version; ALREADY_EXISTS when the name is taken. */
export async function insertFunction(db: Database, name: string, isPublic: boolean, limits: StoredLimits): Promise<FunctionRecord> {
  const { rows } = await db.query<FunctionRecord>(
    `INSERT INTO functions (name, public, timeout_ms, memory_mb) VALUES ($1, $2, $3, $4)
     ON CONFLICT (name) DO NOTHING
     RETURNING name, public, active_version AS "activeVersion", timeout_ms AS "timeoutMs",
       memory_mb AS "memoryMb", created_at AS "createdAt", updated_at AS "updatedAt"`,
    [name, isPublic, limits.timeoutMs, limits.memoryMb],
  );
  if (!rows[0]) throw domainError('ALREADY_EXISTS', `function "${name}" already exists; deploy to it instead`);
  return rows[0];
}

/**
 * Stores a new version and activates it in one transaction, creating the function when it does
 * not exist. `public` and `limits` left undefined keep an existing function's values. The row
 * lock on the function makes concurrent deploys number their versions one after the other.
 */
export async function deployVersion(
  db: Database,
  input: {
    name: string;
    source: string;
    language: FunctionLanguage;
    compiled: CompiledFunction;
    author: string;
    public?: boolean;
    limits?: StoredLimits;
  },
): Promise<{ function: FunctionRecord; version: FunctionVersionRecord }> {
  return inTransaction(db, async (client) => {
    await client.query(
      `INSERT INTO functions (name, public, timeout_ms, memory_mb) VALUES ($1, $2, $3, $4)
       ON CONFLICT (name) DO NOTHING`,
      [input.name, input.public ?? false, input.limits?.timeoutMs ?? null, input.limits?.memoryMb ?? null],
    );
    await client.query('SELECT 1 FROM functions WHERE name = $1 FOR UPDATE', [input.name]);
    const next = await client.query<{ version: number }>(
      'SELECT coalesce(max(version), 0) + 1 AS version FROM function_versions WHERE function_name = $1',
      [input.name],
    );
    const version = next.rows[0]!.version;
    const contentHash = createHash('sha256').update(input.source).digest('hex');

    const inserted = await client.query<FunctionVersionRecord>(
      `INSERT INTO function_versions (function_name, version, source, language, compiled, content_hash, author)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${VERSION_COLUMNS}`,
      [input.name, version, input.source, input.language, input.compiled.code, contentHash, input.author],
    );
    await client.query(
      `UPDATE functions SET active_version = $2, updated_at = now(),
         public = coalesce($3, public),
         timeout_ms = CASE WHEN $4 THEN $5 ELSE timeout_ms END,
         memory_mb = CASE WHEN $4 THEN $6 ELSE memory_mb END
       WHERE name = $1`,
      [
        input.name,
        version,
        input.public ?? null,
        input.limits !== undefined,
        input.limits?.timeoutMs ?? null,
        input.limits?.memoryMb ?? null,
      ],
    );
    const updated = await getFunction(client, input.name);
    return { function: updated, version: { ...inserted.rows[0]!, source: '' } };
  });
}

/** Lists versions below `before` (all when null), newest first, without source. */
export async function listVersions(db: Database, name: string, before: number | null, limit: number): Promise<FunctionVersionRecord[]> {
  const { rows } = await db.query<FunctionVersionRecord>(
    `SELECT ${VERSION_COLUMNS}, '' AS source FROM function_versions
      WHERE function_name = $1 AND ($2::int IS NULL OR version < $2) ORDER BY version DESC LIMIT $3`,
    [name, before, limit],
  );
  return rows;
}

/** Reads one version with its source; NOT_FOUND when it does not exist. */
export async function getVersion(db: Database, name: string, version: number): Promise<FunctionVersionRecord> {
  const { rows } = await db.query<FunctionVersionRecord>(
    `SELECT ${VERSION_COLUMNS}, source FROM function_versions WHERE function_name = $1 AND version = $2`,
    [name, version],
  );
  if (!rows[0]) throw versionNotFound(name, version);
  return rows[0];
}

/** Points the function at an existing version; NOT_FOUND for an unknown function or version. */
export async function activateVersion(db: Database, name: string, version: number): Promise<FunctionRecord> {
  const exists = await db.query('SELECT 1 FROM function_versions WHERE function_name = $1 AND version = $2', [name, version]);
  if (exists.rowCount === 0) {
    await getFunction(db, name);
    throw versionNotFound(name, version);
  }
  await db.query('UPDATE functions SET active_version = $2, updated_at = now() WHERE name = $1', [name, version]);
  return getFunction(db, name);
}

/** Deletes a function with its versions and executions; NOT_FOUND when it does not exist. */
export async function deleteFunction(db: Database, name: string): Promise<void> {
  const deleted = await db.query('DELETE FROM functions WHERE name = $1', [name]);
  if (deleted.rowCount === 0) throw functionNotFound(name);
}

function functionNotFound(name: string) {
  return domainError('NOT_FOUND', `function "${name}" does not exist`, { metadata: { function: name } });
}

function versionNotFound(name: string, version: number) {
  return domainError('NOT_FOUND', `function "${name}" has no version ${version}`, {
    metadata: { function: name, version: String(version) },
  });
}

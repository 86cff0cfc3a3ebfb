import { createHash, randomBytes } from 'node:crypto';

import type pg from 'pg';
import type { Logger } from 'pino';

import { domainError } from '../core/errors.ts';
import type { SecretBox } from '../core/secret-box.ts';

// Clock handling: every time comparison in this file runs in SQL against the database's
// `now()` (the start time of the transaction), so replicas with drifting clocks agree on
// expiry and on the grace window.

/** Grace window for a repeated refresh when the caller sets none, in seconds. */
export const DEFAULT_REFRESH_GRACE_SECONDS = 5;

/** Maximum grace window in seconds, because a longer one would widen the replay window. */
export const MAX_REFRESH_GRACE_SECONDS = 10;

const TOKEN_BYTES = 32;
// 32 bytes are 43 base64url characters without padding.
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{43}$/;

/** Anything that runs queries: a pool, a pool client inside a transaction, or a client. */
export type Queryable = Pick<pg.Pool, 'query'> | Pick<pg.PoolClient, 'query'>;

/** A refresh token handed to a client, with the family (sign-in session) it belongs to. */
export interface IssuedRefreshToken {
  token: string;
  familyId: string;
}

/** Result of a rotation: the successor token and what the family grants. */
export interface RotatedRefreshToken extends IssuedRefreshToken {
  userId: string;
  clientId: string | null;
  scope: string;
}

/** Options of rotateRefreshToken. */
export interface RotateOptions {
  /**
   * How long a used token may be presented again and receive the same successor, in seconds:
   * 0 to 10, default 5. It covers clients that send one refresh twice (retries, two tabs).
   */
  graceSeconds?: number;
  /** Lifetime of the successor in seconds, capped by the family's absolute expiry. */
  lifetimeSeconds: number;
  /** Seals the successor while the grace window lasts. */
  secretBox: SecretBox;
  /**
   * Start of the associated data for the sealed successor, such as `tenant:acme`. The token
   * hash is appended, so a sealed successor cannot be moved to another row.
   */
  associatedData: string;
  /** Receives a warning when reuse revokes a family. */
  logger?: Logger;
}

/** Creates a new opaque refresh token: 32 random bytes, base64url. */
function newToken(): { token: string; hash: string } {
  const token = randomBytes(TOKEN_BYTES).toString('base64url');
  return { token, hash: hashRefreshToken(token) };
}

/** Returns the stored form of a refresh token: its SHA-256 as lower-case hex. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Starts a refresh family (one sign-in session) for `userId` and returns its first token.
 * `lifetimeSeconds` is the family's absolute lifetime, which rotation never extends. Run it on
 * the same client as the sign-in transaction so both commit together.
 */
export async function startFamily(
  client: Queryable,
  input: { userId: string; clientId?: string | null; scope: string; lifetimeSeconds: number },
): Promise<IssuedRefreshToken> {
  requirePositiveSeconds('refresh family lifetime', input.lifetimeSeconds);
  const { token, hash } = newToken();
  const { rows } = await client.query(
    `WITH family AS (
       INSERT INTO refresh_families (user_id, client_id, scope, expires_at)
       VALUES ($1, $2, $3, now() + make_interval(secs => $4))
       RETURNING id, expires_at
     )
     INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
     SELECT $5, id, expires_at FROM family
     RETURNING family_id`,
    [input.userId, input.clientId ?? null, input.scope, input.lifetimeSeconds, hash],
  );
  return { token, familyId: rows[0].family_id };
}

/**
 * Exchanges a refresh token for its successor. The first use issues a successor and marks
 * the token used. A repeat within the grace window returns the same successor, so concurrent
 * refreshes from one client both succeed. A repeat after the grace window is treated as
 * theft: it revokes the whole family (reason `reuse`) and throws REFRESH_TOKEN_REUSED.
 * Unknown, expired and revoked tokens throw INVALID_REFRESH_TOKEN.
 */
export async function rotateRefreshToken(
  pool: Pick<pg.Pool, 'query' | 'connect'>,
  token: string,
  options: RotateOptions,
): Promise<RotatedRefreshToken> {
  const graceSeconds = options.graceSeconds ?? DEFAULT_REFRESH_GRACE_SECONDS;
  if (!(graceSeconds >= 0 && graceSeconds <= MAX_REFRESH_GRACE_SECONDS)) {
    throw new Error(`refresh grace must be 0 to ${MAX_REFRESH_GRACE_SECONDS} seconds, got ${graceSeconds}`);
  }
  requirePositiveSeconds('refresh token lifetime', options.lifetimeSeconds);
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) {
    throw domainError('INVALID_REFRESH_TOKEN', 'Refresh token is malformed; sign in again.');
  }
  const hash = hashRefreshToken(token);
  const sealingContext = `${options.associatedData}:refresh:${hash}`;

  const client = await pool.connect();
  try {
    await client.query('BEGIN');
    // Locking the token row makes a concurrent rotation of the same token wait here until
    // this transaction commits, and then read the successor this one stored.
    const { rows } = await client.query(
      `SELECT t.family_id, t.used_at, t.successor_encrypted,
              t.expires_at <= now() AS token_expired,
              t.used_at > now() - make_interval(secs => $2) AS within_grace,
              f.user_id, f.client_id, f.scope, f.revoked_at,
              f.expires_at <= now() AS family_expired
         FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
        WHERE t.token_hash = $1
          FOR UPDATE OF t`,
      [hash, graceSeconds],
    );
    const row = rows[0];
    if (!row || row.revoked_at !== null || row.family_expired || row.token_expired) {
      await client.query('ROLLBACK');
      throw domainError('INVALID_REFRESH_TOKEN', 'Refresh token is invalid, expired or revoked; sign in again.');
    }
    const family = { familyId: row.family_id, userId: row.user_id, clientId: row.client_id, scope: row.scope };

    if (row.used_at === null) {
      const successor = newToken();
      await client.query(
        `INSERT INTO refresh_tokens (token_hash, family_id, expires_at)
         SELECT $1, id, LEAST(now() + make_interval(secs => $3), expires_at)
           FROM refresh_families WHERE id = $2`,
        [successor.hash, row.family_id, options.lifetimeSeconds],
      );
      await client.query(
        `UPDATE refresh_tokens
            SET used_at = now(), successor_hash = $2, successor_encrypted = $3
          WHERE token_hash = $1`,
        [hash, successor.hash, options.secretBox.encrypt(successor.token, sealingContext)],
      );
      await wipeExpiredSuccessorsOfFamily(client, row.family_id, graceSeconds);
      await client.query('COMMIT');
      return { token: successor.token, ...family };
    }

    if (row.within_grace && row.successor_encrypted !== null) {
      await client.query('COMMIT');
      return { token: options.secretBox.decrypt(row.successor_encrypted, sealingContext), ...family };
    }

    await revokeFamily(client, row.family_id, 'reuse');
    await client.query('COMMIT');
    options.logger?.warn(
      { familyId: row.family_id, userId: row.user_id, clientId: row.client_id },
      'refresh token reused after the grace window; family revoked',
    );
    throw domainError('REFRESH_TOKEN_REUSED', 'Refresh token was already used; the session is revoked, sign in again.');
  } catch (error) {
    // After COMMIT or ROLLBACK this is a no-op, for which PostgreSQL only returns a warning.
    await client.query('ROLLBACK').catch(() => undefined);
    throw error;
  } finally {
    client.release();
  }
}

/**
 * Revokes the family that `token` belongs to, as on sign-out. Idempotent: an unknown token
 * or an already revoked family changes nothing. Returns the family id when the token is
 * known.
 */
export async function revokeFamilyOf(
  client: Queryable,
  token: string,
  reason = 'sign_out',
): Promise<string | undefined> {
  if (typeof token !== 'string' || !TOKEN_PATTERN.test(token)) return undefined;
  const { rows } = await client.query('SELECT family_id FROM refresh_tokens WHERE token_hash = $1', [
    hashRefreshToken(token),
  ]);
  if (rows.length === 0) return undefined;
  await revokeFamily(client, rows[0].family_id, reason);
  return rows[0].family_id;
}

/**
 * Revokes every live family of a user, as after a password change or when an admin disables
 * the user. Returns how many families were revoked.
 */
export async function revokeFamiliesOfUser(
  client: Queryable,
  userId: string,
  reason = 'user_revoked',
): Promise<number> {
  const { rows } = await client.query(
    `UPDATE refresh_families SET revoked_at = now(), revoke_reason = $2
      WHERE user_id = $1 AND revoked_at IS NULL
      RETURNING id`,
    [userId, reason],
  );
  const ids = rows.map((row) => row.id as string);
  if (ids.length > 0) {
    await client.query(
      `UPDATE refresh_tokens SET successor_encrypted = NULL
        WHERE family_id = ANY($1::uuid[]) AND successor_encrypted IS NOT NULL`,
      [ids],
    );
  }
  return ids.length;
}

/**
 * Clears sealed successors whose grace window has passed, in every family. Rotation already
 * clears them per family, so this sweep only matters for families that are never refreshed
 * again. Returns the number of rows changed.
 */
export async function wipeExpiredSuccessors(
  client: Queryable,
  graceSeconds = MAX_REFRESH_GRACE_SECONDS,
): Promise<number> {
  // NOTE: there is no index on used_at, so this scans refresh_tokens. Fine for a periodic job
  // on small tables; add a partial index on (used_at) WHERE successor_encrypted IS NOT NULL if
  // tenants keep millions of tokens.
  const result = await client.query(
    `UPDATE refresh_tokens SET successor_encrypted = NULL
      WHERE successor_encrypted IS NOT NULL AND used_at <= now() - make_interval(secs => $1)`,
    [graceSeconds],
  );
  return result.rowCount ?? 0;
}

async function revokeFamily(client: Queryable, familyId: string, reason: string): Promise<void> {
  await client.query(
    `UPDATE refresh_families SET revoked_at = now(), revoke_reason = $2
      WHERE id = $1 AND revoked_at IS NULL`,
    [familyId, reason],
  );
  await client.query(
    `UPDATE refresh_tokens SET successor_encrypted = NULL
      WHERE family_id = $1 AND successor_encrypted IS NOT NULL`,
    [familyId],
  );
}

async function wipeExpiredSuccessorsOfFamily(
  client: Queryable,
  familyId: string,
  graceSeconds: number,
): Promise<void> {
  await client.query(
    `UPDATE refresh_tokens SET successor_encrypted = NULL
      WHERE family_id = $1 AND successor_encrypted IS NOT NULL
        AND used_at <= now() - make_interval(secs => $2)`,
    [familyId, graceSeconds],
  );
}

function requirePositiveSeconds(name: string, seconds: number): void {
  if (!Number.isInteger(seconds) || seconds <= 0) {
    throw new Error(`${name} must be a positive whole number of seconds, got ${seconds}`);
  }
}

import type { Database } from '../db/pool-handle.ts';

/**
 * Max age of a cached token status, in milliseconds. A change made through this process drops
 * the entry, so it applies at once. A change made by another replica, or directly in the
 * database, applies within this time plus one query.
 */
export const TOKEN_STATUS_MAX_AGE_MS = 5_000;

/** Max number of cached token statuses per tenant. When full, the oldest entry is dropped. */
export const TOKEN_STATUS_MAX_ENTRIES = 10_000;

/** Result of a status check: `usable`, or the reason the token may not be used. */
export type TokenStatus = 'usable' | 'revoked' | 'inactive';

/** Claims of a verified access token that the status check reads. */
export interface TokenIdentity {
  jti: string;
  /** `sub`: a user id, or the client id for a client credentials token. */
  subject: string;
  /** `client` when the token was issued to an app acting for itself (client credentials). */
  kind: 'user' | 'client';
}

/**
 * Per-tenant cache of "may this access token still be used": not in `revoked_access_tokens`,
 * and its subject is an active user (or an enabled client). One database query per token per
 * TOKEN_STATUS_MAX_AGE_MS; concurrent requests with the same token share it.
 */
export interface TokenStatusCache {
  /** The status of a verified token. */
  check(token: TokenIdentity): Promise<TokenStatus>;
  /** Drops the cached statuses of a subject's tokens, after it was disabled, deleted or changed. */
  forgetSubject(subject: string): void;
  /** Records a revocation done in this process, so it applies at once. */
  markRevoked(jti: string): void;
}

interface Entry {
  subject: string;
  at: number;
  status: Promise<TokenStatus>;
}

/** Creates the cache over a tenant database. `now` is for tests. */
export function createTokenStatusCache(
  db: Database,
  options: { maxAgeMs?: number; maxEntries?: number; now?: () => number } = {},
): TokenStatusCache {
  const maxAge = options.maxAgeMs ?? TOKEN_STATUS_MAX_AGE_MS;
  const maxEntries = options.maxEntries ?? TOKEN_STATUS_MAX_ENTRIES;
  const now = options.now ?? Date.now;
  // Keyed by jti. Map keeps insertion order, so the first key is the oldest entry.
  const entries = new Map<string, Entry>();

  async function load(token: TokenIdentity): Promise<TokenStatus> {
    const subjectQuery =
      token.kind === 'client'
        ? 'SELECT 1 FROM clients WHERE client_id = $2 AND enabled'
        : "SELECT 1 FROM users WHERE id = $2::uuid AND status = 'active'";
    const { rows } = await db.query<{ revoked: boolean; active: boolean }>(
      `SELECT EXISTS (SELECT 1 FROM revoked_access_tokens WHERE jti = $1) AS revoked,
              EXISTS (${subjectQuery}) AS active`,
      [token.jti, token.subject],
    );
    if (rows[0].revoked) return 'revoked';
    return rows[0].active ? 'usable' : 'inactive';
  }

  return {
    check(token) {
      // A user token's subject is a user id (a UUID), so anything else cannot be an active user.
      if (token.kind === 'user' && !UUID.test(token.subject)) return Promise.resolve('inactive');
      const cached = entries.get(token.jti);
      if (cached && cached.subject === token.subject && now() - cached.at < maxAge) return cached.status;
      if (cached) entries.delete(token.jti);
      while (entries.size >= maxEntries) entries.delete(entries.keys().next().value!);

      const entry: Entry = { subject: token.subject, at: now(), status: load(token) };
      entries.set(token.jti, entry);
      // A failed query is not cached, so the next request queries again.
      entry.status.catch(() => {
        if (entries.get(token.jti) === entry) entries.delete(token.jti);
      });
      return entry.status;
    },
    forgetSubject(subject) {
      for (const [jti, entry] of entries) if (entry.subject === subject) entries.delete(jti);
    },
    markRevoked(jti) {
      const entry = entries.get(jti);
      entries.delete(jti);
      if (entry) entries.set(jti, { subject: entry.subject, at: now(), status: Promise.resolve('revoked') });
    },
  };
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

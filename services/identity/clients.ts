import { randomBytes } from 'node:crypto';

import type { Database } from '../db/pool-handle.ts';
import { hashPassword, verifyAgainstDummy, verifyPassword } from './passwords.ts';

/** Scopes an app gets when it is registered without `allowed_scopes`. */
export const DEFAULT_CLIENT_SCOPES = ['openid', 'profile', 'email', 'offline_access'];

/** Every scope an app may be allowed. */
export const KNOWN_SCOPES = ['openid', 'profile', 'email', 'offline_access', 'functions.execute'];

/** A row of the tenant's `clients` table. */
export interface ClientRow {
  client_id: string;
  name: string;
  type: 'public' | 'confidential';
  secret_hash: string | null;
  redirect_uris: string[];
  allowed_scopes: string[];
  enabled: boolean;
  created_at: Date;
}

const CLIENT_COLUMNS = 'client_id, name, type, secret_hash, redirect_uris, allowed_scopes, enabled, created_at';

/** Generates a client id: 16 random bytes, base64url. */
export function newClientId(): string {
  return randomBytes(16).toString('base64url');
}

/** Generates a client secret (256 bits) and its argon2id hash. */
export async function newClientSecret(): Promise<{ secret: string; hash: string }> {
  const secret = randomBytes(32).toString('base64url');
  return { secret, hash: await hashPassword(secret) };
}

/** Finds an app by client id; undefined for an unknown one. */
export async function findClient(db: Pick<Database, 'query'>, clientId: string): Promise<ClientRow | undefined> {
  if (!clientId || clientId.length > 200) return undefined;
  const { rows } = await db.query<ClientRow>(`SELECT ${CLIENT_COLUMNS} FROM clients WHERE client_id = $1`, [clientId]);
  return rows[0];
}

/** Lists apps newest first, after the keyset cursor `after` (`<iso time>|<client id>`). */
export async function listClients(db: Database, limit: number, after?: string): Promise<ClientRow[]> {
  if (!after) {
    const { rows } = await db.query<ClientRow>(
      `SELECT ${CLIENT_COLUMNS} FROM clients ORDER BY created_at DESC, client_id DESC LIMIT $1`,
      [limit],
    );
    return rows;
  }
  const separator = after.indexOf('|');
  const { rows } = await db.query<ClientRow>(
    `SELECT ${CLIENT_COLUMNS} FROM clients WHERE (created_at, client_id) < ($2::timestamptz, $3)
     ORDER BY created_at DESC, client_id DESC LIMIT $1`,
    [limit, after.slice(0, separator), after.slice(separator + 1)],
  );
  return rows;
}

/** Keyset cursor of a row for listClients. */
export function clientCursor(row: ClientRow): string {
  return `${row.created_at.toISOString()}|${row.client_id}`;
}

/**
 * Checks a confidential app's secret against its argon2id hash. Unknown apps and public apps
 * cost one dummy verification too, so timing does not tell which client ids exist.
 */
export async function verifyClientSecret(client: ClientRow | undefined, secret: string): Promise<boolean> {
  if (!client || !client.secret_hash || !secret) {
    await verifyAgainstDummy(secret || 'x');
    return false;
  }
  return verifyPassword(client.secret_hash, secret);
}

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/** Schemes a redirect URI may never use: they run code, read local files or carry inline content. */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'blob:']);

/**
 * Checks a redirect URI for registration: absolute, no fragment (RFC 6749 section 3.1.2);
 * http and https need a host and no user name or password (`https://user:pw@app.test/cb` reads
 * as the host `app.test` to a browser but not to every reader). Private-use schemes such as `com.acme.app:/cb` are allowed for native apps (RFC 8252).
 * Returns a problem or undefined.
 */
export function redirectUriProblem(uri: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(uri);
  } catch {
    return `redirect URI "${uri}" is not an absolute URI`;
  }
  if (parsed.hash || uri.includes('#')) return `redirect URI "${uri}" must not contain a fragment`;
  if (FORBIDDEN_SCHEMES.has(parsed.protocol)) return `redirect URI "${uri}" uses a forbidden scheme`;
  const web = parsed.protocol === 'http:' || parsed.protocol === 'https:';
  // The URL parser turns `https:///cb` into `https://cb/`; the text itself must name the host.
  if (web && (!/^https?:\/\/[^/?#]/i.test(uri) || !parsed.hostname)) return `redirect URI "${uri}" has no host`;
  if (web && (parsed.username || parsed.password || /^https?:\/\/[^/?#]*@/i.test(uri))) {
    return `redirect URI "${uri}" must not contain a user name or password`;
  }
  if (uri.includes('*')) return `redirect URI "${uri}" must not contain a wildcard; register each URI exactly`;
  // RFC 8252 section 8.3: plain http only for loopback redirects of native apps.
  if (parsed.protocol === 'http:' && !LOOPBACK_HOSTS.has(parsed.hostname)) {
    return `redirect URI "${uri}" must use https, or http only on a loopback address such as 127.0.0.1`;
  }
  if (uri.length > 2000) return 'a redirect URI may be at most 2000 characters';
  return undefined;
}

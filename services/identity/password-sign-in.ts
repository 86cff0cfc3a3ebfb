import { domainError, retryLaterError } from '../core/errors.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { hashPassword, needsRehash, normalizeEmail, verifyAgainstDummy, verifyPassword } from './passwords.ts';
import { findUserByEmail, type UserRow } from './users.ts';

/** One message for every failed password sign-in, so answers do not reveal which part was wrong. */
export const INVALID_CREDENTIALS_MESSAGE = 'the email or password is incorrect';

/** A password sign-in attempt: the credentials and the client they came from. */
export interface PasswordSignInAttempt {
  email: string;
  password: string;
  ip: string;
  userAgent: string;
  /** Recorded in `login_activity.method`: `password` for TenantAuth.SignIn, `oauth2` for the sign-in page. */
  method: 'password' | 'oauth2';
}

/**
 * Checks an email and password against the tenant's users, with the tenant's lockout rules and
 * the per-IP failure throttle, and records the attempt in `login_activity`. Returns the user on
 * success. Throws INVALID_CREDENTIALS for an unknown email, a wrong password or a disabled user
 * (one message, and an argon2 verification in every case, so neither responses nor timing tell
 * them apart). Throws ACCOUNT_LOCKED while the email is locked out, whether or not it belongs to
 * a user, and RATE_LIMITED while the client IP is throttled. On success, a hash made with older
 * argon2 parameters is replaced by one made with the current parameters.
 */
export async function signInWithPassword(tenant: TenantContext, attempt: PasswordSignInAttempt): Promise<UserRow> {
  const email = normalizeEmail(attempt.email);
  const settings = await tenant.settings();
  const record = (userId: string | null, result: string) =>
    tenant.db.query(
      'INSERT INTO login_activity (user_id, email, ip, user_agent, result, method) VALUES ($1, $2, $3, $4, $5, $6)',
      [userId, email, attempt.ip, attempt.userAgent.slice(0, 512), result, attempt.method],
    );

  // The throttle check and the user lookup are independent reads, so they run together.
  const [, user] = await Promise.all([
    throttleFailuresPerIp(tenant, attempt.ip, () => record(null, 'rate_limited')),
    findUserByEmail(tenant.db, email),
  ]);

  // An email without a user locks like a real account, with its failures counted in
  // unknown_email_lockouts, so ACCOUNT_LOCKED does not reveal which emails have accounts.
  const lockedUntil = user ? user.locked_until : await unknownEmailLockedUntil(tenant, email);
  if (lockedUntil && lockedUntil.getTime() > Date.now()) {
    await record(user?.id ?? null, 'locked_out');
    throw retryLaterError(
      'ACCOUNT_LOCKED',
      'too many failed sign-ins; the account is locked, try again later',
      (lockedUntil.getTime() - Date.now()) / 1000,
    );
  }

  const passwordMatches = user?.password_hash
    ? await verifyPassword(user.password_hash, attempt.password)
    : await verifyAgainstDummy(attempt.password);
  if (!user || !user.password_hash || !passwordMatches) {
    if (user) {
      await tenant.db.query(`UPDATE users SET ${COUNT_FAILURE} WHERE id = $1`, [
        user.id,
        settings.lockoutMaxAttempts,
        settings.lockoutMinutes,
      ]);
    } else {
      await countUnknownEmailFailure(tenant, email, settings.lockoutMaxAttempts, settings.lockoutMinutes);
    }
    await record(user?.id ?? null, 'invalid_credentials');
    throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  }
  if (user.status !== 'active') {
    await record(user.id, 'disabled');
    throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  }

  // One statement, so the sign-in, its login activity row and its user.signed_in event commit
  // together, in one round trip.
  const signedIn = await tenant.db.query<{ last_sign_in_at: Date }>(
    `WITH signed_in AS (
       UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = now(), last_sign_in_ip = $2
       WHERE id = $1 RETURNING id, email, last_sign_in_at
     ), activity AS (
       INSERT INTO login_activity (user_id, email, ip, user_agent, result, method)
       SELECT id, $4, $2, $5, 'success', $3 FROM signed_in
     )
     SELECT last_sign_in_at, tansu_emit_event('user.signed_in', 'users/' || id,
       jsonb_build_object('user', jsonb_build_object('id', id, 'email', email),
                          'method', $3::text,
                          'signedInAt', tansu_iso_time(last_sign_in_at)))
     FROM signed_in`,
    [user.id, attempt.ip, attempt.method, email, attempt.userAgent.slice(0, 512)],
  );
  if (needsRehash(user.password_hash)) {
    // The hash was made with older argon2 parameters. The stored hash is compared, so a password
    // changed in the meantime is not overwritten.
    await tenant.db.query('UPDATE users SET password_hash = $2, updated_at = now() WHERE id = $1 AND password_hash = $3', [
      user.id,
      await hashPassword(attempt.password),
      user.password_hash,
    ]);
  }
  if (signedIn.rowCount === 0) throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  return {
    ...user,
    failed_attempts: 0,
    locked_until: null,
    last_sign_in_at: signedIn.rows[0].last_sign_in_at,
    last_sign_in_ip: attempt.ip,
  };
}

/** Max number of failed sign-ins (wrong credentials or locked) per client IP and tenant in the window. */
export const SIGN_IN_FAILURES_PER_IP = 20;

/** Window of the per-IP sign-in failure throttle, in minutes. */
export const SIGN_IN_FAILURE_WINDOW_MINUTES = 15;

/** Days an unknown email's failure count is kept after its last failure. */
const UNKNOWN_EMAIL_RETENTION_DAYS = 1;

// Counts one failure in `failed_attempts`: at $2 failures in a row the row is locked for $3
// minutes and the count starts again. Every SET expression reads the row's old values.
const COUNT_FAILURE = `
  locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN now() + make_interval(mins => $3) ELSE locked_until END,
  failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END`;

/**
 * Rejects a sign-in with RATE_LIMITED when `ip` had SIGN_IN_FAILURES_PER_IP failures in the
 * last SIGN_IN_FAILURE_WINDOW_MINUTES, counted from `login_activity`. The retry delay is the
 * time until the oldest counted failure leaves the window. Rejected attempts are recorded by
 * `recordRejection` and do not count themselves.
 */
async function throttleFailuresPerIp(tenant: TenantContext, ip: string, recordRejection: () => Promise<unknown>): Promise<void> {
  // NOTE: the count is read before the attempt's argon2 check, so concurrent attempts from one
  // IP can go past the limit by the number in flight.
  const { rows } = await tenant.db.query<{ count: number; oldest: Date | null }>(
    `SELECT count(*)::int AS count, min(at) AS oldest FROM login_activity
      WHERE ip = $1 AND at > now() - make_interval(mins => $2) AND result IN ('invalid_credentials', 'locked_out')`,
    [ip, SIGN_IN_FAILURE_WINDOW_MINUTES],
  );
  if (rows[0].count < SIGN_IN_FAILURES_PER_IP) return;
  await recordRejection();
  const windowMs = SIGN_IN_FAILURE_WINDOW_MINUTES * 60_000;
  const retryAfter = rows[0].oldest ? (rows[0].oldest.getTime() + windowMs - Date.now()) / 1000 : windowMs / 1000;
  throw retryLaterError(
    'RATE_LIMITED',
    `too many failed sign-ins from this address; at most ${SIGN_IN_FAILURES_PER_IP} per ${SIGN_IN_FAILURE_WINDOW_MINUTES} minutes`,
    retryAfter,
  );
}

async function unknownEmailLockedUntil(tenant: TenantContext, email: string): Promise<Date | null> {
  const { rows } = await tenant.db.query<{ locked_until: Date | null }>(
    'SELECT locked_until FROM unknown_email_lockouts WHERE email = $1',
    [email],
  );
  return rows[0]?.locked_until ?? null;
}

/** Counts a failure for an email without a user, and drops counts idle for a day. */
async function countUnknownEmailFailure(tenant: TenantContext, email: string, maxAttempts: number, minutes: number): Promise<void> {
  await tenant.db.query('INSERT INTO unknown_email_lockouts (email) VALUES ($1) ON CONFLICT (email) DO NOTHING', [email]);
  await tenant.db.query(`UPDATE unknown_email_lockouts SET ${COUNT_FAILURE}, updated_at = now() WHERE email = $1`, [
    email,
    maxAttempts,
    minutes,
  ]);
  await tenant.db.query(
    `DELETE FROM unknown_email_lockouts
      WHERE updated_at < now() - make_interval(days => $1) AND (locked_until IS NULL OR locked_until < now())`,
    [UNKNOWN_EMAIL_RETENTION_DAYS],
  );
}

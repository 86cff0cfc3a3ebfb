import { domainError, retryLaterError } from '../core/errors.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { hashPassword, needsRehash, normalizeEmail, verifyAgainstDummy, verifyPassword } from './passwords.ts';
import { findUserByEmail, findUserById, type UserRow } from './users.ts';

/** One message for every failed password sign-in, so answers do not reveal which part was wrong. */
export const INVALID_CREDENTIALS_MESSAGE = 'the email or password is incorrect';

/** Who is signing in and from where. */
export interface PasswordSignInAttempt {
  email: string;
  password: string;
  ip: string;
  userAgent: string;
  /** Recorded in `login_activity.method`: `password` for TenantAuth.SignIn, `oauth2` for the sign-in page. */
  method: 'password' | 'oauth2';
}

/**
 * Checks an email and password against the tenant's users, with the tenant's lockout rules,
 * and records the attempt in `login_activity`. Returns the user on success. Throws
 * INVALID_CREDENTIALS for an unknown email, a wrong password or a disabled user (one message,
 * and an argon2 verification in every case, so neither answers nor timing tell them apart),
 * and ACCOUNT_LOCKED while the account is locked out. On success, a hash made with older argon2
 * parameters is replaced by one made with the current parameters.
 */
export async function signInWithPassword(tenant: TenantContext, attempt: PasswordSignInAttempt): Promise<UserRow> {
  const email = normalizeEmail(attempt.email);
  const settings = await tenant.settings();
  const record = (userId: string | null, result: string) =>
    tenant.db.query(
      'INSERT INTO login_activity (user_id, email, ip, user_agent, result, method) VALUES ($1, $2, $3, $4, $5, $6)',
      [userId, email, attempt.ip, attempt.userAgent.slice(0, 512), result, attempt.method],
    );

  const user = await findUserByEmail(tenant.db, email);
  if (!user || !user.password_hash) {
    await verifyAgainstDummy(attempt.password);
    await record(user?.id ?? null, 'invalid_credentials');
    throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  }
  if (user.locked_until && user.locked_until.getTime() > Date.now()) {
    await record(user.id, 'locked_out');
    throw retryLaterError(
      'ACCOUNT_LOCKED',
      'too many failed sign-ins; the account is locked, try again later',
      (user.locked_until.getTime() - Date.now()) / 1000,
    );
  }
  const passwordMatches = await verifyPassword(user.password_hash, attempt.password);
  if (!passwordMatches) {
    await tenant.db.query(
      `UPDATE users SET
         locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN now() + make_interval(mins => $3) ELSE locked_until END,
         failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END
       WHERE id = $1`,
      [user.id, settings.lockoutMaxAttempts, settings.lockoutMinutes],
    );
    await record(user.id, 'invalid_credentials');
    throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  }
  if (user.status !== 'active') {
    await record(user.id, 'disabled');
    throw domainError('INVALID_CREDENTIALS', INVALID_CREDENTIALS_MESSAGE);
  }

  // One statement, so the sign-in and its user.signed_in event commit together.
  await tenant.db.query(
    `WITH signed_in AS (
       UPDATE users SET failed_attempts = 0, locked_until = NULL, last_sign_in_at = now(), last_sign_in_ip = $2
       WHERE id = $1 RETURNING id, email, last_sign_in_at
     )
     SELECT tansu_emit_event('user.signed_in', 'users/' || id,
       jsonb_build_object('user', jsonb_build_object('id', id, 'email', email),
                          'method', $3::text,
                          'signedInAt', tansu_iso_time(last_sign_in_at)))
     FROM signed_in`,
    [user.id, attempt.ip, attempt.method],
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
  await record(user.id, 'success');
  return (await findUserById(tenant.db, user.id)) ?? user;
}

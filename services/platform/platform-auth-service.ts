import { create } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';

import { CreateTokenResponseSchema, PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { domainError, retryLaterError } from '../core/errors.ts';
import { PLATFORM_TENANT } from '../identity/authenticate.ts';
import { normalizeEmail, verifyAgainstDummy, verifyPassword } from '../identity/passwords.ts';
import { DEFAULT_IDENTITY_SETTINGS } from '../identity/settings.ts';
import { issueAccessToken } from '../identity/tokens.ts';
import { clientIp } from '../server/client-ip.ts';
import type { Platform } from './platform.ts';

/** Failed platform sign-ins for one email from one IP that lock that pair out for the window. */
export const PLATFORM_LOCKOUT_ATTEMPTS = 5;
/** Failed platform sign-ins from one IP, for any email, that throttle the IP for the window. */
export const PLATFORM_FAILURES_PER_IP = 20;
/** Window of both limits, in minutes. */
export const PLATFORM_FAILURE_WINDOW_MINUTES = 15;

/**
 * Rejects a platform sign-in while its client IP is locked out for this email (5 failures in 15
 * minutes) or throttled for any email (20 failures). Counting per IP, not per account, means
 * that someone who knows the admin email cannot lock the admin out from everywhere, at the
 * cost of letting an attacker with many addresses guess 5 passwords per address and window.
 */
async function rejectWhileThrottled(
  platform: Platform,
  email: string,
  ip: string,
  recordRejection: (result: 'locked_out' | 'rate_limited') => Promise<unknown>,
) {
  const { rows } = await platform.platformDb.query<{ for_email: number; for_ip: number; oldest: Date | null }>(
    `SELECT count(*) FILTER (WHERE email = $2)::int AS for_email, count(*)::int AS for_ip, min(at) AS oldest
       FROM platform_sign_in_activity
      WHERE ip = $1 AND result = 'invalid_credentials' AND at > now() - make_interval(mins => $3)`,
    [ip, email, PLATFORM_FAILURE_WINDOW_MINUTES],
  );
  const { for_email: forEmail, for_ip: forIp, oldest } = rows[0];
  if (forEmail < PLATFORM_LOCKOUT_ATTEMPTS && forIp < PLATFORM_FAILURES_PER_IP) return;
  const lockedOut = forEmail >= PLATFORM_LOCKOUT_ATTEMPTS;
  await recordRejection(lockedOut ? 'locked_out' : 'rate_limited');
  const windowMs = PLATFORM_FAILURE_WINDOW_MINUTES * 60_000;
  const retryAfter = oldest ? (oldest.getTime() + windowMs - Date.now()) / 1000 : windowMs / 1000;
  if (lockedOut) {
    throw retryLaterError('ACCOUNT_LOCKED', 'too many failed sign-ins for this account from this address; try again later', retryAfter);
  }
  throw retryLaterError('RATE_LIMITED', 'too many failed sign-ins from this address; try again later', retryAfter);
}

/** Scope of every platform admin token. */
export const PLATFORM_ADMIN_SCOPE = 'platform.admin';

/** Registers the PlatformAuth service. */
export function platformAuthRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(PlatformAuth, {
      async createToken(request, context) {
        if (request.grantType !== 'password') {
          throw domainError('INVALID_ARGUMENT', `grant_type must be "password", got "${request.grantType}"`, {
            metadata: { field: 'grant_type' },
          });
        }
        const email = normalizeEmail(request.username);
        if (!email || !request.password) {
          throw domainError('INVALID_ARGUMENT', 'username and password are required', {
            metadata: { field: email ? 'password' : 'username' },
          });
        }
        const ip = clientIp(context, platform.config.trustedProxies);
        const userAgent = (context.requestHeader.get('user-agent') ?? '').slice(0, 512);
        const record = (result: string) =>
          platform.platformDb.query(
            'INSERT INTO platform_sign_in_activity (email, ip, user_agent, result) VALUES ($1, $2, $3, $4)',
            [email, ip, userAgent, result],
          );
        await rejectWhileThrottled(platform, email, ip, record);

        const { rows } = await platform.platformDb.query('SELECT id, password_hash FROM platform_admins WHERE email = $1', [email]);
        const admin = rows[0] as { id: string; password_hash: string } | undefined;
        const passwordMatches = admin
          ? await verifyPassword(admin.password_hash, request.password)
          : await verifyAgainstDummy(request.password).then(() => false);
        if (!admin || !passwordMatches) {
          await record('invalid_credentials');
          throw domainError('INVALID_CREDENTIALS', 'the username or password is incorrect');
        }
        await record('success');

        const issued = await issueAccessToken({
          signer: await platform.platformKeys.activeKey(),
          issuer: platform.platformIssuer(),
          subject: admin.id,
          tenant: PLATFORM_TENANT,
          audience: PLATFORM_TENANT,
          scope: PLATFORM_ADMIN_SCOPE,
          roles: ['PlatformAdmin'],
          lifetimeSeconds: DEFAULT_IDENTITY_SETTINGS.accessTokenLifetimeSeconds,
        });
        return create(CreateTokenResponseSchema, {
          accessToken: issued.token,
          tokenType: 'Bearer',
          expiresIn: BigInt(issued.expiresIn),
          scope: PLATFORM_ADMIN_SCOPE,
        });
      },
    });
}

import { create } from '@bufbuild/protobuf';
import type { ConnectRouter } from '@connectrpc/connect';

import { CreateTokenResponseSchema, PlatformAuth } from '#gen/tansu/platform/v1/platform_auth_pb.js';
import { domainError, retryLaterError } from '../core/errors.ts';
import { PLATFORM_TENANT } from '../identity/authenticate.ts';
import { normalizeEmail, verifyAgainstDummy, verifyPassword } from '../identity/passwords.ts';
import { DEFAULT_IDENTITY_SETTINGS } from '../identity/settings.ts';
import { issueAccessToken } from '../identity/tokens.ts';
import type { Platform } from './platform.ts';

/** Scope of every platform admin token. */
export const PLATFORM_ADMIN_SCOPE = 'platform.admin';

/** Registers the PlatformAuth service. */
export function platformAuthRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(PlatformAuth, {
      async createToken(request) {
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
        const { rows } = await platform.platformDb.query(
          'SELECT id, password_hash, locked_until FROM platform_admins WHERE email = $1',
          [email],
        );
        const admin = rows[0] as { id: string; password_hash: string; locked_until: Date | null } | undefined;
        if (!admin) {
          await verifyAgainstDummy(request.password);
          throw domainError('INVALID_CREDENTIALS', 'the username or password is incorrect');
        }
        if (admin.locked_until && admin.locked_until.getTime() > Date.now()) {
          throw retryLaterError('ACCOUNT_LOCKED', 'too many failed sign-ins; try again later', (admin.locked_until.getTime() - Date.now()) / 1000);
        }
        if (!(await verifyPassword(admin.password_hash, request.password))) {
          const { lockoutMaxAttempts, lockoutMinutes } = DEFAULT_IDENTITY_SETTINGS;
          await platform.platformDb.query(
            `UPDATE platform_admins SET
               locked_until = CASE WHEN failed_attempts + 1 >= $2 THEN now() + make_interval(mins => $3) ELSE locked_until END,
               failed_attempts = CASE WHEN failed_attempts + 1 >= $2 THEN 0 ELSE failed_attempts + 1 END
             WHERE id = $1`,
            [admin.id, lockoutMaxAttempts, lockoutMinutes],
          );
          throw domainError('INVALID_CREDENTIALS', 'the username or password is incorrect');
        }
        await platform.platformDb.query('UPDATE platform_admins SET failed_attempts = 0, locked_until = NULL WHERE id = $1', [admin.id]);

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

import { create } from '@bufbuild/protobuf';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  GetCurrentUserResponseSchema,
  GetJwksResponseSchema,
  GetOpenIdConfigurationResponseSchema,
  JsonWebKeySchema,
  RefreshResponseSchema,
  SignInResponseSchema,
  SignOutResponseSchema,
  SignUpResponseSchema,
  TenantAuth,
} from '#gen/tansu/identity/v1/auth_pb.js';
import { domainError, retryLaterError } from '../core/errors.ts';
import { inTransaction } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { clientIp } from '../server/client-ip.ts';
import { PLATFORM_TENANT, requestedTenant, requireTenantCaller } from './authenticate.ts';
import {
  checkPasswordPolicy,
  hashPassword,
  isValidEmail,
  normalizeEmail,
  verifyAgainstDummy,
  verifyPassword,
} from './passwords.ts';
import { signInWithPassword } from './password-sign-in.ts';
import { revokeFamilyOf } from './refresh-tokens.ts';
import { rotateSession, signAccessToken, startSession } from './sessions.ts';
import { findUserByEmail, findUserById, toUserMessage } from './users.ts';

/** Registers the TenantAuth service. */
export function tenantAuthRoutes(platform: Platform) {
  const tenantOf = (field: string, context: HandlerContext) =>
    platform.tenants.get(requestedTenant(field, context.requestHeader));

  return (router: ConnectRouter) =>
    router.service(TenantAuth, {
      async signUp(request, context) {
        const tenant = await tenantOf(request.tenant, context);
        const email = normalizeEmail(request.email);
        if (!isValidEmail(email)) {
          throw domainError('INVALID_ARGUMENT', 'email must be an email address such as ada@example.com', {
            metadata: { field: 'email' },
          });
        }
        if (request.displayName.length > 200) {
          throw domainError('INVALID_ARGUMENT', 'display_name must be at most 200 characters', {
            metadata: { field: 'display_name' },
          });
        }
        const settings = await tenant.settings();
        const problems = checkPasswordPolicy(request.password, settings.passwordPolicy, { email });
        if (problems.length > 0) {
          throw domainError('WEAK_PASSWORD', `password rejected: ${problems.join('; ')}`, { metadata: { field: 'password' } });
        }
        const ip = clientIp(context, platform.config.trustedProxies);
        await countSignupAttempt(tenant, ip, settings.signupsPerIpPerHour);

        const passwordHash = await hashPassword(request.password);
        const user = await inTransaction(tenant.db, async (client) => {
          const inserted = await client.query(
            `INSERT INTO users (email, display_name, password_hash) VALUES ($1, $2, $3)
             ON CONFLICT (email) DO NOTHING RETURNING id`,
            [email, request.displayName.trim(), passwordHash],
          );
          if (inserted.rowCount === 0) {
            throw domainError('EMAIL_ALREADY_EXISTS', `a user with email ${email} already exists in this tenant; sign in instead`, {
              metadata: { field: 'email' },
            });
          }
          await client.query("INSERT INTO user_roles (user_id, role) VALUES ($1, 'User')", [inserted.rows[0].id]);
          return inserted.rows[0] as { id: string };
        });
        const row = await findUserById(tenant.db, user.id);
        if (!row) throw domainError('INTERNAL', 'the new user could not be read back');
        const tokens = await startSession(tenant, row);
        platform.logger.info({ tenant: tenant.id, user: row.id }, 'user signed up');
        return create(SignUpResponseSchema, { ...tokens, expiresIn: BigInt(tokens.expiresIn), user: toUserMessage(row) });
      },

      async signIn(request, context) {
        const tenant = await tenantOf(request.tenant, context);
        const email = normalizeEmail(request.email);
        if (!email || !request.password) {
          throw domainError('INVALID_ARGUMENT', 'email and password are required', {
            metadata: { field: email ? 'password' : 'email' },
          });
        }
        const user = await signInWithPassword(tenant, {
          email,
          password: request.password,
          ip: clientIp(context, platform.config.trustedProxies),
          userAgent: context.requestHeader.get('user-agent') ?? '',
          method: 'password',
        });
        const tokens = await startSession(tenant, user);
        return create(SignInResponseSchema, { ...tokens, expiresIn: BigInt(tokens.expiresIn), user: toUserMessage(user) });
      },

      async refresh(request, context) {
        const tenant = await tenantOf(request.tenant, context);
        if (!request.refreshToken) {
          throw domainError('INVALID_ARGUMENT', 'refresh_token is required', { metadata: { field: 'refresh_token' } });
        }
        const rotated = await rotateSession(tenant, platform.secretBox, request.refreshToken);
        const user = await findUserById(tenant.db, rotated.userId);
        if (!user || user.status !== 'active') {
          await revokeFamilyOf(tenant.db, rotated.token);
          throw domainError('INVALID_REFRESH_TOKEN', 'the refresh token is no longer valid; sign in again');
        }
        const access = await signAccessToken(tenant, user, rotated.scope);
        return create(RefreshResponseSchema, {
          accessToken: access.token,
          refreshToken: rotated.token,
          expiresIn: BigInt(access.expiresIn),
          tokenType: 'Bearer',
        });
      },

      async signOut(request, context) {
        const tenant = await tenantOf(request.tenant, context);
        if (!request.refreshToken) {
          throw domainError('INVALID_ARGUMENT', 'refresh_token is required', { metadata: { field: 'refresh_token' } });
        }
        await revokeFamilyOf(tenant.db, request.refreshToken);
        return create(SignOutResponseSchema, {});
      },

      async getCurrentUser(request, context) {
        const tenantId = requestedTenant(request.tenant, context.requestHeader);
        const caller = await requireTenantCaller(platform, context, tenantId);
        const tenant = await platform.tenants.get(tenantId);
        const user = await findUserById(tenant.db, caller.subject);
        if (!user) throw domainError('USER_NOT_FOUND', 'the user of this access token no longer exists');
        return create(GetCurrentUserResponseSchema, { user: toUserMessage(user) });
      },

      async getJwks(request, context) {
        // `platform` is a reserved tenant id; its key set signs platform admin tokens, and a
        // proxy such as Envoy verifies those tokens against it.
        const keyStore =
          requestedTenant(request.tenant, context.requestHeader) === PLATFORM_TENANT
            ? platform.platformKeys
            : (await tenantOf(request.tenant, context)).keys;
        const keys = await keyStore.publishedKeys(new Date());
        context.responseHeader.set('cache-control', 'public, max-age=300');
        return create(GetJwksResponseSchema, {
          keys: keys.map((key: Record<string, unknown>) =>
            create(JsonWebKeySchema, {
              kty: String(key.kty),
              kid: String(key.kid),
              use: 'sig',
              alg: 'RS256',
              n: String(key.n),
              e: String(key.e),
            }),
          ),
        });
      },

      async getOpenIdConfiguration(request, context) {
        const tenant = await tenantOf(request.tenant, context);
        context.responseHeader.set('cache-control', 'public, max-age=300');
        return create(GetOpenIdConfigurationResponseSchema, openIdConfiguration(tenant));
      },
    });
}

/** OpenID Provider metadata of a tenant; the OAuth endpoints live under `<issuer>/oauth2/`. */
function openIdConfiguration(tenant: TenantContext) {
  const issuer = tenant.issuer;
  return {
    issuer,
    jwksUri: `${issuer}/.well-known/jwks.json`,
    authorizationEndpoint: `${issuer}/oauth2/authorize`,
    tokenEndpoint: `${issuer}/oauth2/token`,
    userinfoEndpoint: `${issuer}/oauth2/userinfo`,
    revocationEndpoint: `${issuer}/oauth2/revoke`,
    introspectionEndpoint: `${issuer}/oauth2/introspect`,
    responseTypesSupported: ['code'],
    subjectTypesSupported: ['public'],
    idTokenSigningAlgValuesSupported: ['RS256'],
    scopesSupported: ['openid', 'profile', 'email', 'offline_access', 'functions.execute'],
    grantTypesSupported: ['authorization_code', 'refresh_token', 'client_credentials'],
    tokenEndpointAuthMethodsSupported: ['client_secret_basic', 'client_secret_post', 'none'],
    codeChallengeMethodsSupported: ['S256'],
    claimsSupported: ['sub', 'iss', 'aud', 'exp', 'iat', 'tid', 'roles', 'scope', 'email', 'email_verified', 'name'],
  };
}

/**
 * Counts a signup attempt from `ip` against the tenant's hourly limit, or rejects it with
 * RESOURCE_EXHAUSTED and the seconds until the oldest counted attempt ages out. A transaction
 * advisory lock per IP makes concurrent attempts count one after another.
 */
async function countSignupAttempt(tenant: TenantContext, ip: string, perHour: number): Promise<void> {
  await inTransaction(tenant.db, async (client) => {
    await client.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`signup:${ip}`]);
    const { rows } = await client.query<{ count: number; oldest: Date | null }>(
      `SELECT count(*)::int AS count, min(at) AS oldest FROM signup_attempts
       WHERE ip = $1 AND at > now() - interval '1 hour'`,
      [ip],
    );
    if (rows[0].count >= perHour) {
      const retryAfter = rows[0].oldest ? (rows[0].oldest.getTime() + 3600_000 - Date.now()) / 1000 : 3600;
      throw retryLaterError('RATE_LIMITED', `too many signups from this address; at most ${perHour} per hour`, retryAfter);
    }
    await client.query('INSERT INTO signup_attempts (ip) VALUES ($1)', [ip]);
    await client.query("DELETE FROM signup_attempts WHERE at < now() - interval '1 hour' AND ip = $1", [ip]);
  });
}

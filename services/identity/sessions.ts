import type { TenantContext } from '../platform/tenant-registry.ts';
import type { SecretBox } from '../core/secret-box.ts';
import type { Database } from '../db/pool-handle.ts';
import { rotateRefreshToken, startFamily } from './refresh-tokens.ts';
import { issueAccessToken } from './tokens.ts';

/** Scopes of tokens from password sign-in and sign-up. */
export const DEFAULT_USER_SCOPE = 'openid profile email functions.execute';

/** Tokens handed to a signed-in user. */
export interface SessionTokens {
  accessToken: string;
  refreshToken: string;
  expiresIn: number;
  tokenType: 'Bearer';
}

/** Associated data that binds a tenant's sealed refresh successors to that tenant. */
export function refreshAssociatedData(tenant: TenantContext): string {
  return `tenant:${tenant.id}:refresh`;
}

/** Signs an access token for a user of the tenant with the tenant's active key. */
export async function signAccessToken(
  tenant: TenantContext,
  user: { id: string; roles: string[] },
  scope: string,
  audience = tenant.id,
): Promise<{ token: string; expiresIn: number }> {
  const settings = await tenant.settings();
  const signer = await tenant.keys.activeKey();
  const issued = await issueAccessToken({
    signer,
    issuer: tenant.issuer,
    subject: user.id,
    tenant: tenant.id,
    audience,
    scope,
    roles: user.roles,
    lifetimeSeconds: settings.accessTokenLifetimeSeconds,
  });
  return { token: issued.token, expiresIn: issued.expiresIn };
}

/** Starts a session (a refresh family) for a user and returns its first tokens. */
export async function startSession(
  tenant: TenantContext,
  user: { id: string; roles: string[] },
  options: { scope?: string; clientId?: string; db?: Database } = {},
): Promise<SessionTokens> {
  const settings = await tenant.settings();
  const scope = options.scope ?? DEFAULT_USER_SCOPE;
  const startRefreshFamily = async () => {
    const client = await (options.db ?? tenant.db).connect();
    try {
      const { token } = await startFamily(client, {
        userId: user.id,
        clientId: options.clientId,
        scope,
        // NOTE: the first token lives as long as the family, so the idle timeout only applies
        // from the first refresh on.
        lifetimeSeconds: settings.sessionAbsoluteTimeoutSeconds,
      });
      return token;
    } finally {
      client.release();
    }
  };
  // Signing the access token needs no database, so it overlaps the refresh family's writes.
  const [refreshToken, access] = await Promise.all([startRefreshFamily(), signAccessToken(tenant, user, scope)]);
  return { accessToken: access.token, refreshToken, expiresIn: access.expiresIn, tokenType: 'Bearer' };
}

/** Rotates a refresh token of the tenant; see rotateRefreshToken for reuse and grace rules. */
export async function rotateSession(tenant: TenantContext, secretBox: SecretBox, refreshToken: string) {
  const settings = await tenant.settings();
  return rotateRefreshToken(tenant.db, refreshToken, {
    graceSeconds: settings.refreshReuseGraceSeconds,
    lifetimeSeconds: Math.min(settings.refreshTokenLifetimeSeconds, settings.sessionIdleTimeoutSeconds),
    secretBox,
    associatedData: refreshAssociatedData(tenant),
  });
}

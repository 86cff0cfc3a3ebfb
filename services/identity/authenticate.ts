import { ConnectError, type HandlerContext } from '@connectrpc/connect';
import { decodeJwt, type JWTPayload } from 'jose';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import { domainError } from '../core/errors.ts';
import type { Platform } from '../platform/platform.ts';
import { assertTenantId } from '../platform/tenant-id.ts';
import { verifyAccessToken, type AccessTokenClaims } from './tokens.ts';

/** The verified sender of a request. */
export interface Caller {
  /** `platform` for platform admins, else the tenant id of the token. */
  tenant: string;
  /** User id (`sub`). */
  subject: string;
  roles: string[];
  scopes: string[];
  isPlatformAdmin: boolean;
}

/** `tid` of platform admin tokens; `platform` is a reserved tenant id, so no tenant has it. */
export const PLATFORM_TENANT = 'platform';

function bearerToken(headers: Headers): string | undefined {
  const header = headers.get('authorization');
  if (!header) return undefined;
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) {
    throw domainError('UNAUTHENTICATED', 'the Authorization header must be "Bearer <access token>"');
  }
  return match[1];
}

/**
 * Verifies the bearer token of a request, if there is one. The unverified `tid` only picks the
 * key set and issuer to verify against; the verifier then requires the same `tid` in the
 * verified claims, so a token can only ever speak for the tenant that signed it. A tenant token
 * must also not be revoked, and its user must exist and be active (its app, for a client
 * credentials token); INVALID_TOKEN with check REVOKED or SUBJECT_INACTIVE otherwise.
 */
export async function authenticate(platform: Platform, headers: Headers): Promise<Caller | undefined> {
  const token = bearerToken(headers);
  if (!token) return undefined;

  let payload: JWTPayload;
  try {
    payload = decodeJwt(token);
  } catch {
    throw domainError('INVALID_TOKEN', 'the access token is malformed');
  }
  const claimedTenant = payload.tid;
  if (typeof claimedTenant !== 'string' || claimedTenant === '') {
    throw domainError('INVALID_TOKEN', 'the access token has no tenant claim');
  }

  if (claimedTenant === PLATFORM_TENANT) {
    const claims = await verifyAccessToken(token, {
      issuer: platform.platformIssuer(),
      tenant: PLATFORM_TENANT,
      resolveKey: (kid) => platform.platformKeys.verificationKey(kid),
    });
    return toCaller(claims, true);
  }

  let tenant;
  try {
    tenant = await platform.tenants.get(claimedTenant);
  } catch (error) {
    // Only an unknown tenant makes the token invalid. Any other failure (the platform database
    // being unreachable, say) must not tell clients to discard a good token.
    const reason = error instanceof ConnectError ? error.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
    if (reason === 'TENANT_NOT_FOUND' || reason === 'INVALID_TENANT_ID') {
      throw domainError('INVALID_TOKEN', 'the access token was issued by an unknown tenant');
    }
    throw error;
  }
  const claims = await verifyAccessToken(token, {
    issuer: tenant.issuer,
    tenant: tenant.id,
    resolveKey: (kid) => tenant.keys.verificationKey(kid),
  });
  // Revocation and the subject's status come from a per-tenant cache, at most
  // TOKEN_STATUS_MAX_AGE_MS (5 s) old. `aud` is required but not compared, and roles come from the token.
  const status = await tenant.tokenStatus.check({
    jti: claims.jti,
    subject: claims.sub,
    kind: payload.client_id === claims.sub ? 'client' : 'user',
  });
  if (status === 'revoked') {
    throw domainError('INVALID_TOKEN', 'the access token was revoked; sign in again', { metadata: { check: 'REVOKED' } });
  }
  if (status === 'inactive') {
    throw domainError('INVALID_TOKEN', 'the user or app of this access token is disabled or deleted', {
      metadata: { check: 'SUBJECT_INACTIVE' },
    });
  }
  return toCaller(claims, false);
}

function toCaller(claims: AccessTokenClaims, isPlatformAdmin: boolean): Caller {
  return {
    tenant: claims.tid,
    subject: claims.sub,
    roles: claims.roles,
    scopes: claims.scope.split(' ').filter(Boolean),
    isPlatformAdmin,
  };
}

/** Requires any valid access token; UNAUTHENTICATED without one. */
export async function requireCaller(platform: Platform, context: HandlerContext): Promise<Caller> {
  const caller = await authenticate(platform, context.requestHeader);
  if (!caller) throw domainError('UNAUTHENTICATED', 'this call needs an access token in the Authorization header');
  return caller;
}

/** Requires a platform admin token; PERMISSION_DENIED for any other valid token. */
export async function requirePlatformAdmin(platform: Platform, context: HandlerContext): Promise<Caller> {
  const caller = await requireCaller(platform, context);
  if (!caller.isPlatformAdmin) throw domainError('PERMISSION_DENIED', 'this call is for platform admins only');
  return caller;
}

/**
 * Requires a token of `tenantId` itself. A token of another tenant is PERMISSION_DENIED, and
 * that is decided before the tenant's existence is checked, so callers learn nothing about
 * other tenants. With `role`, the user must hold it; platform admins pass role checks of every
 * tenant only when `allowPlatformAdmin` is set.
 */
export async function requireTenantCaller(
  platform: Platform,
  context: HandlerContext,
  tenantId: string,
  options: { role?: string; scope?: string; allowPlatformAdmin?: boolean } = {},
): Promise<Caller> {
  // A malformed id is INVALID_ARGUMENT for every caller; checking its shape reveals nothing
  // about which tenants exist.
  assertTenantId(tenantId, 'tenant');
  const caller = await requireCaller(platform, context);
  if (caller.isPlatformAdmin) {
    if (options.allowPlatformAdmin) return caller;
    throw domainError('PERMISSION_DENIED', `a platform admin token cannot act as a user of tenant "${tenantId}"`);
  }
  if (caller.tenant !== tenantId) {
    throw domainError('PERMISSION_DENIED', `the access token belongs to another tenant than "${tenantId}"`);
  }
  if (options.role && !caller.roles.includes(options.role)) {
    throw domainError('PERMISSION_DENIED', `this call needs the ${options.role} role`);
  }
  if (options.scope && !caller.scopes.includes(options.scope)) {
    throw domainError('PERMISSION_DENIED', `this call needs the ${options.scope} scope`);
  }
  return caller;
}

/**
 * Picks the tenant a request is for: the request's `tenant` field (the REST path fills it) or
 * the `X-Tansu-Tenant` header. When both are set they must agree.
 */
export function requestedTenant(fieldValue: string, headers: Headers): string {
  const header = headers.get('x-tansu-tenant')?.trim() ?? '';
  if (fieldValue && header && fieldValue !== header) {
    throw domainError('TENANT_MISMATCH', `the tenant field "${fieldValue}" and the X-Tansu-Tenant header "${header}" differ`, {
      metadata: { field: 'tenant' },
    });
  }
  const tenant = fieldValue || header;
  if (!tenant) {
    throw domainError('INVALID_ARGUMENT', 'tenant is required: set the tenant field or the X-Tansu-Tenant header', {
      metadata: { field: 'tenant' },
    });
  }
  return tenant;
}

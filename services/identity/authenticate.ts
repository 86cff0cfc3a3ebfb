import { ConnectError, type HandlerContext } from '@connectrpc/connect';
import { decodeJwt, decodeProtectedHeader } from 'jose';

import { ErrorInfoSchema } from '#gen/google/rpc/error_details_pb.js';
import { domainError } from '../core/errors.ts';
import type { Platform } from '../platform/platform.ts';
import { assertTenantId } from '../platform/tenant-id.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
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

/** How long a verified token is accepted again without a signature check, in milliseconds. */
const VERIFIED_TOKEN_MS = 30_000;
/** Verified tokens kept per platform; the oldest go first. */
const MAX_VERIFIED_TOKENS = 10_000;

/** A token whose signature and claims were checked. */
interface VerifiedToken {
  caller: Caller;
  kid: string;
  jti: string;
  /** Whether the subject is an app (client credentials) rather than a user. */
  subjectKind: 'user' | 'client';
  /** Epoch seconds of the token's `exp`. */
  expiresAt: number;
}

// Per platform, so two platforms in one process (as in tests) never accept each other's tokens.
const verifiedTokens = new WeakMap<Platform, Map<string, VerifiedToken & { until: number }>>();

/**
 * Verifies the bearer token of a request, if there is one. The unverified `tid` only picks the
 * key set and issuer to verify against; the verifier then requires the same `tid` in the
 * verified claims, so a token can only ever speak for the tenant that signed it.
 *
 * A verified signature is remembered by the token's exact text for up to 30 s, never past its
 * `exp`, because the RS256 check took about 0.1 ms of main-thread CPU per call in a profile.
 * A remembered token is accepted only while its tenant exists and its signing key is still
 * published. Revocation and the subject's status are checked on every request: a tenant token
 * must not be revoked, and its user must exist and be active (its app, for a client
 * credentials token); INVALID_TOKEN with check REVOKED or SUBJECT_INACTIVE otherwise.
 */
export async function authenticate(platform: Platform, headers: Headers): Promise<Caller | undefined> {
  const token = bearerToken(headers);
  if (!token) return undefined;

  let verified = verifiedTokens.get(platform);
  if (!verified) {
    verified = new Map();
    verifiedTokens.set(platform, verified);
  }
  const remembered = verified.get(token);
  let result: VerifiedToken | undefined;
  if (remembered && Date.now() < remembered.until && (await verificationKeyStillPublished(platform, remembered))) {
    result = remembered;
  } else if (remembered) {
    verified.delete(token);
  }
  if (!result) {
    result = await verifyBearerToken(platform, token);
    if (verified.size >= MAX_VERIFIED_TOKENS) verified.delete(verified.keys().next().value!);
    verified.set(token, { ...result, until: Math.min(result.expiresAt * 1000, Date.now() + VERIFIED_TOKEN_MS) });
  }
  if (!result.caller.isPlatformAdmin) await requireActiveSubject(await tenantOfToken(platform, result.caller.tenant), result);
  return result.caller;
}

async function verificationKeyStillPublished(platform: Platform, token: VerifiedToken): Promise<boolean> {
  const keys = token.caller.isPlatformAdmin ? platform.platformKeys : (await tenantOfToken(platform, token.caller.tenant)).keys;
  return Boolean(await keys.verificationKey(token.kid));
}

/**
 * Looks up the tenant that issued a token. Only an unknown tenant makes the token invalid; any
 * other failure (the platform database being unreachable, say) is passed on, because telling
 * clients to discard a good token would sign their users out.
 */
async function tenantOfToken(platform: Platform, tenantId: string): Promise<TenantContext> {
  try {
    return await platform.tenants.get(tenantId);
  } catch (error) {
    const reason = error instanceof ConnectError ? error.findDetails(ErrorInfoSchema)[0]?.reason : undefined;
    if (reason === 'TENANT_NOT_FOUND' || reason === 'INVALID_TENANT_ID') {
      throw domainError('INVALID_TOKEN', 'the access token was issued by an unknown tenant');
    }
    throw error;
  }
}

/**
 * Rejects a revoked token or one whose user or app is disabled or deleted. The answer comes
 * from a per-tenant cache at most TOKEN_STATUS_MAX_AGE_MS (5 s) old. `aud` is required but not
 * compared, and roles come from the token.
 */
async function requireActiveSubject(tenant: TenantContext, token: VerifiedToken): Promise<void> {
  const status = await tenant.tokenStatus.check({ jti: token.jti, subject: token.caller.subject, kind: token.subjectKind });
  if (status === 'revoked') {
    throw domainError('INVALID_TOKEN', 'the access token was revoked; sign in again', { metadata: { check: 'REVOKED' } });
  }
  if (status === 'inactive') {
    throw domainError('INVALID_TOKEN', 'the user or app of this access token is disabled or deleted', {
      metadata: { check: 'SUBJECT_INACTIVE' },
    });
  }
}

async function verifyBearerToken(platform: Platform, token: string): Promise<VerifiedToken> {
  let payload;
  try {
    payload = decodeJwt(token);
  } catch {
    throw domainError('INVALID_TOKEN', 'the access token is malformed');
  }
  const claimedTenant = payload.tid;
  if (typeof claimedTenant !== 'string' || claimedTenant === '') {
    throw domainError('INVALID_TOKEN', 'the access token has no tenant claim');
  }
  // verifyAccessToken has required a string kid by the time this is read.
  const kid = () => decodeProtectedHeader(token).kid as string;

  if (claimedTenant === PLATFORM_TENANT) {
    const claims = await verifyAccessToken(token, {
      issuer: platform.platformIssuer(),
      tenant: PLATFORM_TENANT,
      resolveKey: (keyId) => platform.platformKeys.verificationKey(keyId),
    });
    return { caller: toCaller(claims, true), kid: kid(), jti: claims.jti, subjectKind: 'user', expiresAt: claims.exp };
  }

  const tenant = await tenantOfToken(platform, claimedTenant);
  const claims = await verifyAccessToken(token, {
    issuer: tenant.issuer,
    tenant: tenant.id,
    resolveKey: (keyId) => tenant.keys.verificationKey(keyId),
  });
  return {
    caller: toCaller(claims, false),
    kid: kid(),
    jti: claims.jti,
    subjectKind: payload.client_id === claims.sub ? 'client' : 'user',
    expiresAt: claims.exp,
  };
}

// Frozen, because one Caller serves every request that presents the same token.
function toCaller(claims: AccessTokenClaims, isPlatformAdmin: boolean): Caller {
  return Object.freeze({
    tenant: claims.tid,
    subject: claims.sub,
    roles: Object.freeze([...claims.roles]) as string[],
    scopes: Object.freeze(claims.scope.split(' ').filter(Boolean)) as string[],
    isPlatformAdmin,
  });
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

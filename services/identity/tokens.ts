import { randomUUID } from 'node:crypto';

import { errors as joseErrors, jwtVerify, SignJWT, type CryptoKey, type KeyObject } from 'jose';

import { domainError } from '../core/errors.ts';
import { SIGNING_ALGORITHM } from './signing-keys.ts';

/** Media type of access tokens (RFC 9068), sent as the JWT `typ` header. */
export const ACCESS_TOKEN_TYPE = 'at+jwt';

/** Maximum token length in characters, which bounds the work one request can cause. */
export const MAX_TOKEN_LENGTH = 8192;

// Tokens from a replica whose clock runs slightly ahead stay valid for this long.
const DEFAULT_CLOCK_TOLERANCE_SECONDS = 5;

/** A public or private key that verifies RS256 signatures. */
export type VerificationKey = CryptoKey | KeyObject;

/** Name of the check that rejected a token, sent as `check` in the ErrorInfo metadata. */
export type TokenCheck =
  | 'MALFORMED'
  | 'ALGORITHM'
  | 'KID_MISSING'
  | 'KID_UNKNOWN'
  | 'TYPE'
  | 'SIGNATURE'
  | 'ISSUER'
  | 'AUDIENCE'
  | 'TENANT'
  | 'EXPIRED'
  | 'NOT_YET_VALID'
  | 'REVOKED'
  | 'SUBJECT_INACTIVE';

/** Claims of a verified access token. */
export interface AccessTokenClaims {
  iss: string;
  /** User id. */
  sub: string;
  /** Tenant id. */
  tid: string;
  aud: string | string[];
  /** Space-separated scopes (RFC 9068). */
  scope: string;
  roles: string[];
  jti: string;
  /** Issue time in seconds since the epoch. */
  iat: number;
  /** Expiry in seconds since the epoch. */
  exp: number;
}

/** Input of issueAccessToken. */
export interface IssueAccessTokenInput {
  signer: { kid: string; privateKey: CryptoKey | KeyObject };
  /** `<base>/identity/<tenant>` for tenant tokens. */
  issuer: string;
  subject: string;
  tenant: string;
  audience: string | string[];
  /** Space-separated scopes. */
  scope: string;
  roles: string[];
  lifetimeSeconds: number;
  /** Issue time; defaults to the current time. */
  now?: Date;
}

/** Issues an RS256 access token (RFC 9068 `at+jwt`) with a random `jti`. */
export async function issueAccessToken(
  input: IssueAccessTokenInput,
): Promise<{ token: string; expiresIn: number; jti: string }> {
  if (!Number.isInteger(input.lifetimeSeconds) || input.lifetimeSeconds <= 0) {
    throw new Error(`access token lifetime must be a positive whole number of seconds, got ${input.lifetimeSeconds}`);
  }
  const issuedAt = Math.floor((input.now ?? new Date()).getTime() / 1000);
  const jti = randomUUID();
  const token = await new SignJWT({ tid: input.tenant, scope: input.scope, roles: input.roles })
    .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: input.signer.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(input.issuer)
    .setSubject(input.subject)
    .setAudience(input.audience)
    .setJti(jti)
    .setIssuedAt(issuedAt)
    .setExpirationTime(issuedAt + input.lifetimeSeconds)
    .sign(input.signer.privateKey);
  return { token, expiresIn: input.lifetimeSeconds, jti };
}

/** Options of verifyAccessToken. */
export interface VerifyAccessTokenOptions {
  /** The only accepted `iss`. */
  issuer: string;
  /** The tenant of the request; `tid` must equal it. */
  tenant: string;
  /** Returns the key for a `kid`, or undefined when the kid is unknown or no longer published. */
  resolveKey: (kid: string) => Promise<VerificationKey | undefined>;
  /** When set, `aud` must contain one of these. When left out, `aud` is not checked. */
  audience?: string | string[];
  /** Verification time; defaults to the current time. */
  now?: Date;
  /** Allowed clock skew for `exp`, `nbf` and `iat`, in seconds; defaults to 5. */
  clockToleranceSeconds?: number;
}

/**
 * Verifies an access token and returns its claims. Throws INVALID_TOKEN, with the failed check
 * in the `check` metadata, unless all of these hold: three parts, header `alg` exactly RS256,
 * `typ` at+jwt, a `kid` that `resolveKey` resolves, a valid signature, the expected `iss` and
 * `tid`, `aud` when `audience` is given, and `exp`, `nbf` and `iat` consistent with `now`.
 *
 * It does not check revocation of the token or its user, nor scopes and roles, which are the
 * caller's business.
 */
export async function verifyAccessToken(
  token: string,
  options: VerifyAccessTokenOptions,
): Promise<AccessTokenClaims> {
  const now = options.now ?? new Date();
  const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;

  // The header is checked here, before jose, so that no key is looked up and no verification
  // runs for a token that names another algorithm (`none`, HS256 with the public key as the
  // HMAC secret) or no key. jose pins RS256 again below.
  const { header, parts } = decodeHeader(token);
  if (header.alg !== SIGNING_ALGORITHM) {
    throw invalidToken('ALGORITHM', `Access token algorithm must be ${SIGNING_ALGORITHM}.`);
  }
  if (typeof header.kid !== 'string' || header.kid.length === 0) {
    throw invalidToken('KID_MISSING', 'Access token header has no key id (kid).');
  }
  if (header.kid.length > 256) {
    throw invalidToken('MALFORMED', 'Access token key id (kid) is too long.');
  }
  if (!BASE64URL.test(parts[1]) || !BASE64URL.test(parts[2])) {
    throw invalidToken('MALFORMED', 'Access token has an empty or non-base64url payload or signature.');
  }

  const key = await options.resolveKey(header.kid);
  if (!key) {
    throw invalidToken('KID_UNKNOWN', 'Access token was signed with an unknown or retired key.');
  }

  let payload: Record<string, unknown>;
  try {
    ({ payload } = await jwtVerify(token, key, {
      algorithms: [SIGNING_ALGORITHM],
      typ: ACCESS_TOKEN_TYPE,
      issuer: options.issuer,
      audience: options.audience,
      currentDate: now,
      clockTolerance: tolerance,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti'],
    }));
  } catch (error) {
    throw fromJoseError(error);
  }

  const claims = readClaims(payload);
  if (claims.iat > Math.floor(now.getTime() / 1000) + tolerance) {
    throw invalidToken('NOT_YET_VALID', 'Access token was issued in the future.');
  }
  if (claims.tid !== options.tenant) {
    throw invalidToken('TENANT', 'Access token belongs to another tenant.');
  }
  return claims;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;

function decodeHeader(token: string): { header: Record<string, unknown>; parts: string[] } {
  if (typeof token !== 'string' || token.length === 0) {
    throw invalidToken('MALFORMED', 'Access token is missing.');
  }
  if (token.length > MAX_TOKEN_LENGTH) {
    throw invalidToken('MALFORMED', `Access token is longer than ${MAX_TOKEN_LENGTH} characters.`);
  }
  const parts = token.split('.');
  if (parts.length !== 3) {
    throw invalidToken('MALFORMED', 'Access token must be a JWS in compact form (three dot-separated parts).');
  }
  if (!BASE64URL.test(parts[0])) {
    throw invalidToken('MALFORMED', 'Access token header is empty or not base64url.');
  }

  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url').toString('utf8'));
  } catch (cause) {
    throw invalidToken('MALFORMED', 'Access token header is not valid JSON.', cause);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) {
    throw invalidToken('MALFORMED', 'Access token header is not a JSON object.');
  }
  return { header: header as Record<string, unknown>, parts };
}

function readClaims(payload: Record<string, unknown>): AccessTokenClaims {
  const { iss, sub, tid, aud, scope, roles, jti, iat, exp } = payload;
  const isString = (value: unknown): value is string => typeof value === 'string';
  const wellFormed =
    isString(iss) &&
    isString(sub) &&
    isString(tid) &&
    (isString(aud) || (Array.isArray(aud) && aud.every(isString))) &&
    isString(scope) &&
    Array.isArray(roles) &&
    roles.every(isString) &&
    isString(jti) &&
    typeof iat === 'number' &&
    typeof exp === 'number';
  if (!wellFormed) {
    throw invalidToken('MALFORMED', 'Access token claims are missing or have the wrong type.');
  }
  return { iss, sub, tid, aud, scope, roles, jti, iat, exp };
}

function fromJoseError(error: unknown) {
  if (error instanceof joseErrors.JWTExpired) {
    return invalidToken('EXPIRED', 'Access token has expired; refresh it or sign in again.', error);
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    switch (error.claim) {
      case 'iss':
        return invalidToken('ISSUER', 'Access token was issued by another issuer.', error);
      case 'aud':
        return invalidToken('AUDIENCE', 'Access token is not meant for this audience.', error);
      case 'nbf':
        return invalidToken('NOT_YET_VALID', 'Access token is not valid yet.', error);
      case 'typ':
        return invalidToken('TYPE', `Access token type (typ) must be ${ACCESS_TOKEN_TYPE}.`, error);
      default:
        return invalidToken('MALFORMED', `Access token claim "${error.claim}" is missing or invalid.`, error);
    }
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return invalidToken('SIGNATURE', 'Access token signature is invalid.', error);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return invalidToken('ALGORITHM', `Access token algorithm must be ${SIGNING_ALGORITHM}.`, error);
  }
  return invalidToken('MALFORMED', 'Access token is malformed.', error);
}

function invalidToken(check: TokenCheck, message: string, cause?: unknown) {
  return domainError('INVALID_TOKEN', message, { metadata: { check }, cause });
}

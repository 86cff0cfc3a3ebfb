import { jwtVerify, type JWTPayload, type JWTVerifyGetKey } from 'jose';

/** The issuer Tansu uses when a tenant configures Microsoft without one: any Entra directory or personal account. */
export const MICROSOFT_COMMON_ISSUER = 'https://login.microsoftonline.com/common/v2.0';

/** Placeholder for the directory id in the metadata issuer of the `common` and `organizations` authorities. */
const TENANT_PLACEHOLDER = '{tenantid}';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * Checks the `issuer` of the discovered metadata against the configured issuer URL. A directory
 * id (GUID) in the configured URL must come back unchanged. Any other authority (`common`,
 * `organizations`, `consumers` or a domain name) may come back as the same host with the
 * `{tenantid}` placeholder or a directory id in place of the authority, because Microsoft's
 * metadata for them names the issuer that way. Returns what is wrong, or undefined when the metadata is acceptable.
 */
export function checkMetadataIssuer(configured: string, discovered: string): string | undefined {
  const expected = new URL(configured);
  const found = new URL(discovered);
  if (found.href === expected.href) return undefined;

  const [authority, ...rest] = expected.pathname.split('/').filter(Boolean);
  // URL percent-encodes the braces of the placeholder, so segments are compared decoded.
  const [foundAuthority, ...foundRest] = found.pathname.split('/').filter(Boolean).map(decodeURIComponent);
  const sameShape = found.origin === expected.origin && rest.join('/') === foundRest.join('/');
  const authorityResolved = foundAuthority === TENANT_PLACEHOLDER || GUID.test(foundAuthority ?? '');
  if (!GUID.test(authority ?? '') && sameShape && authorityResolved) return undefined;
  return `the provider metadata names issuer ${discovered}, expected ${configured}`;
}

/** Expected values of ID token claims, from the discovered metadata and the pending sign-in. */
export interface IdTokenExpectations {
  /** `issuer` of the discovered metadata, possibly with the `{tenantid}` placeholder. */
  metadataIssuer: string;
  clientId: string;
  nonce: string;
}

/** The checked claims of a Microsoft ID token that Tansu uses. */
export interface MicrosoftIdentity {
  /** Directory (tenant) id of the account, from `tid`. */
  tenantId: string;
  /** `sub`, pairwise per application. */
  subject: string;
  email?: string;
  /** True only when `xms_edov` is true: the owner of the email domain has been verified. */
  emailDomainVerified: boolean;
  name: string;
}

/**
 * Verifies a Microsoft ID token: the signature with `keys` (RS256 only), `aud` (and `azp`
 * when there are several audiences), `exp`, `nbf` and `iat` with 30 seconds of clock
 * tolerance, the nonce, and the issuer.
 *
 * The issuer rule follows Microsoft's token validation guidance in "Access tokens in the
 * Microsoft identity platform" (learn.microsoft.com, source in MicrosoftDocs/azure-docs
 * `articles/active-directory/develop/access-tokens.md`). The metadata of the `common` and
 * `organizations` authorities names the issuer `https://login.microsoftonline.com/{tenantid}/v2.0`.
 * The expected issuer is that template with `{tenantid}` replaced by the token's `tid` claim,
 * which must be a GUID. A metadata
 * issuer without the placeholder (a directory-specific or `consumers` authority) must equal
 * `iss` exactly. The same page says that `sub` is interpreted within the tenant, so callers
 * should key accounts by `tid` and `sub` together.
 *
 * Throws an Error whose message names the failed check.
 */
export async function verifyMicrosoftIdToken(
  idToken: string,
  keys: JWTVerifyGetKey,
  expected: IdTokenExpectations,
): Promise<MicrosoftIdentity> {
  const { payload } = await jwtVerify(idToken, keys, {
    algorithms: ['RS256'],
    audience: expected.clientId,
    clockTolerance: 30,
    requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat'],
  });
  if (Array.isArray(payload.aud) && payload.aud.length > 1 && payload.azp !== expected.clientId) {
    throw new Error('the ID token has several audiences and its azp is not this client');
  }
  if (payload.nonce !== expected.nonce) throw new Error('the ID token nonce does not match the sign-in');

  const tenantId = payload.tid;
  if (typeof tenantId !== 'string' || !GUID.test(tenantId)) throw new Error('the ID token has no tid claim with a directory id');
  const expectedIssuer = expected.metadataIssuer.includes(TENANT_PLACEHOLDER)
    ? expected.metadataIssuer.replace(TENANT_PLACEHOLDER, tenantId)
    : expected.metadataIssuer;
  if (payload.iss !== expectedIssuer) throw new Error(`the ID token issuer ${payload.iss} is not ${expectedIssuer}`);

  return identityOf(payload as JWTPayload & { sub: string }, tenantId);
}

function identityOf(payload: JWTPayload & { sub: string }, tenantId: string): MicrosoftIdentity {
  return {
    tenantId,
    subject: payload.sub,
    email: typeof payload.email === 'string' ? payload.email : undefined,
    // Microsoft does not verify the `email` claim, and Entra ID sends no `email_verified`.
    // `xms_edov` is an optional claim that the app registration must request. It is true when
    // the address is in a domain verified by the account's home directory, or comes from a
    // Microsoft account, a Google account or an email one-time passcode ("Optional claims
    // reference", learn.microsoft.com, source in MicrosoftDocs/azure-docs
    // `articles/active-directory/develop/optional-claims-reference.md`). Only a boolean true
    // counts. Without it the address is unverified, so it never links to an existing user.
    emailDomainVerified: payload.xms_edov === true,
    name: typeof payload.name === 'string' ? payload.name : '',
  };
}

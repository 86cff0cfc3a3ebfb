import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';

import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SignJWT } from 'jose';

import { ConnectError } from '@connectrpc/connect';
import { inTransaction } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { fastifyClientIp } from '../server/client-ip.ts';
import { findClient, verifyClientSecret, type ClientRow } from './clients.ts';
import { errorPage, signInPage } from './oauth-sign-in-page.ts';
import { signInWithPassword } from './password-sign-in.ts';
import { hashRefreshToken, revokeFamilyOf, startFamily } from './refresh-tokens.ts';
import { rotateSession } from './sessions.ts';
import { SIGNING_ALGORITHM } from './signing-keys.ts';
import { ACCESS_TOKEN_TYPE, verifyAccessToken, type AccessTokenClaims } from './tokens.ts';
import { findUserById, type UserRow } from './users.ts';

// The tenant's OAuth 2.0 authorization server and OpenID provider, hand-written to RFC 6749
// (code, refresh token and client credentials grants), RFC 7636 (PKCE, S256 only), RFC 7009
// (revocation), RFC 7662 (introspection), RFC 9068 (JWT access tokens), RFC 9207 (`iss` in the
// authorization response) and OpenID Connect Core 1.0 (ID token, UserInfo).
//
// Why not oidc-provider: it keeps its own token formats, key set and client store, and its
// userinfo endpoint refuses access tokens issued for a resource server, which every token here
// is (Tansu's own APIs accept them). Bridging those took longer than the narrow protocol
// surface below, which reuses Tansu's keys, refresh families and password checks directly.

/** How long an authorization code may be exchanged, in seconds (RFC 6749 section 4.1.2). */
export const AUTHORIZATION_CODE_SECONDS = 60;

const PKCE_CHALLENGE = /^[A-Za-z0-9_-]{43}$/;
const PKCE_VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;

type Parameters = Record<string, string>;

/** An OAuth error response (RFC 6749 section 5.2). */
interface OAuthError {
  status: number;
  error: string;
  description: string;
}

function isOAuthError(value: Parameters | OAuthError): value is OAuthError {
  return typeof (value as OAuthError).status === 'number';
}

const oauthError = (status: number, error: string, description: string): OAuthError => ({ status, error, description });

/** Mounts the protocol endpoints under `/identity/<tenant>/oauth2/`. */
export function registerOAuthServer(app: FastifyInstance, platform: Platform): void {
  app.register(async (scope) => {
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, text, done) => {
      done(null, { form: String(text) });
    });
    scope.addContentTypeParser('*', { parseAs: 'buffer' }, (_request, _body, done) => done(null, { form: undefined }));
    scope.addHook('preHandler', async (request, reply) => {
      const parameter = parameterWithNul(request);
      if (parameter !== undefined) {
        return sendOAuthError(reply, oauthError(400, 'invalid_request', `${parameter} contains a NUL character (\\u0000)`));
      }
    });

    scope.get('/identity/:tenant/oauth2/authorize', (request, reply) =>
      authorize(platform, request, reply, queryParameters(request.url)),
    );
    scope.post('/identity/:tenant/oauth2/authorize', (request, reply) => {
      const parsed = formParameters(request);
      if (isOAuthError(parsed)) return reply.status(400).type('text/html').send(errorPage(parsed.description));
      return authorize(platform, request, reply, parsed);
    });
    scope.post('/identity/:tenant/oauth2/token', (request, reply) => protocolCall(platform, request, reply, token));
    scope.post('/identity/:tenant/oauth2/revoke', (request, reply) => protocolCall(platform, request, reply, revoke));
    scope.post('/identity/:tenant/oauth2/introspect', (request, reply) => protocolCall(platform, request, reply, introspect));
    scope.route({
      method: ['GET', 'POST'],
      url: '/identity/:tenant/oauth2/userinfo',
      handler: (request, reply) => userinfo(platform, request, reply),
    });
  });
}

// ---- request plumbing

/**
 * Names the first path, query or form parameter, or Basic credential, that contains a NUL
 * character (U+0000); PostgreSQL cannot store it in text, so such a request would otherwise
 * fail as an internal error.
 */
function parameterWithNul(request: FastifyRequest): string | undefined {
  const entries: [string, string][] = [...Object.entries(request.params as Record<string, string>)];
  entries.push(...new URLSearchParams(request.url.split('?')[1] ?? ''));
  const form = (request.body as { form?: string } | undefined)?.form;
  if (form !== undefined) entries.push(...new URLSearchParams(form));
  const header = request.headers.authorization;
  if (header?.toLowerCase().startsWith('basic ')) {
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    entries.push(['Basic credentials', formDecode(decoded)]);
  }
  for (const [name, value] of entries) {
    if (name.includes('\0')) return `a parameter name (${JSON.stringify(name.replaceAll('\0', ''))})`;
    if (value.includes('\0')) return `parameter "${name}"`;
  }
  return undefined;
}

function queryParameters(url: string): Parameters {
  const search = new URLSearchParams(url.split('?')[1] ?? '');
  const parameters: Parameters = {};
  for (const [name, value] of search) if (!(name in parameters)) parameters[name] = value;
  return parameters;
}

/** Reads a form body; a repeated parameter is an error (RFC 6749 section 3.1). */
function formParameters(request: FastifyRequest): Parameters | OAuthError {
  const body = request.body as { form?: string } | undefined;
  if (body?.form === undefined) {
    return oauthError(400, 'invalid_request', 'send the parameters as application/x-www-form-urlencoded');
  }
  const parameters: Parameters = {};
  for (const [name, value] of new URLSearchParams(body.form)) {
    if (name in parameters) return oauthError(400, 'invalid_request', `parameter "${name}" appears more than once`);
    parameters[name] = value;
  }
  return parameters;
}

/**
 * Returns the tenant named by a plain HTTP route's `:tenant` parameter, or undefined when the
 * id is malformed or unknown. A database failure is thrown on.
 */
export async function tenantOfRoute(platform: Platform, request: FastifyRequest): Promise<TenantContext | undefined> {
  try {
    return await platform.tenants.get((request.params as { tenant: string }).tenant);
  } catch (error) {
    if (error instanceof ConnectError) return undefined;
    throw error;
  }
}

function sendOAuthError(reply: FastifyReply, error: OAuthError, basicChallenge = false) {
  if (error.status === 401 && basicChallenge) reply.header('www-authenticate', 'Basic realm="tansu"');
  return reply
    .status(error.status)
    .header('cache-control', 'no-store')
    .send({ error: error.error, error_description: error.description });
}

type ProtocolHandler = (
  platform: Platform,
  tenant: TenantContext,
  request: FastifyRequest,
  parameters: Parameters,
) => Promise<{ body: unknown } | (OAuthError & { basicChallenge?: boolean })>;

async function protocolCall(platform: Platform, request: FastifyRequest, reply: FastifyReply, handler: ProtocolHandler) {
  const tenant = await tenantOfRoute(platform, request);
  if (!tenant) return sendOAuthError(reply, oauthError(404, 'invalid_request', 'unknown tenant'));
  const parameters = formParameters(request);
  if (isOAuthError(parameters)) return sendOAuthError(reply, parameters);
  const result = await handler(platform, tenant, request, parameters);
  if ('error' in result) return sendOAuthError(reply, result, result.basicChallenge);
  return reply.header('cache-control', 'no-store').header('pragma', 'no-cache').send(result.body);
}

// ---- authorization endpoint

/** A validated authorization request. */
interface AuthorizationRequest {
  client: ClientRow;
  redirectUri: string;
  scope: string[];
  state?: string;
  nonce?: string;
  codeChallenge?: string;
}

/** The parameters carried from the sign-in page back to the endpoint. */
const CARRIED_PARAMETERS = ['client_id', 'redirect_uri', 'response_type', 'scope', 'state', 'nonce', 'code_challenge', 'code_challenge_method'];

async function authorize(platform: Platform, request: FastifyRequest, reply: FastifyReply, parameters: Parameters) {
  reply.header('cache-control', 'no-store');
  const tenant = await tenantOfRoute(platform, request);
  if (!tenant) return reply.status(404).type('text/html').send(errorPage('This sign-in link names an unknown tenant.'));

  const checked = await validateAuthorization(tenant, parameters);
  if ('page' in checked) return reply.status(400).type('text/html').send(errorPage(checked.page));
  if ('redirect' in checked) return reply.redirect(checked.redirect, 303);
  const authorization = checked.request;

  const carried = Object.fromEntries(CARRIED_PARAMETERS.filter((name) => parameters[name] !== undefined).map((name) => [name, parameters[name]]));
  const page = (error?: string, status = 200) =>
    reply
      .status(status)
      .type('text/html')
      .header('x-frame-options', 'DENY')
      .header('content-security-policy', "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
      .send(
        signInPage({
          tenantName: tenant.record.displayName,
          clientName: authorization.client.name,
          action: `${tenant.issuer}/oauth2/authorize`,
          parameters: carried,
          email: parameters.email,
          error,
        }),
      );

  if (request.method === 'GET') {
    if (parameters.prompt === 'none') {
      return reply.redirect(authorizationRedirect(tenant, authorization, { error: 'login_required' }), 303);
    }
    return page();
  }

  let user: UserRow;
  try {
    user = await signInWithPassword(tenant, {
      email: parameters.email ?? '',
      password: parameters.password ?? '',
      ip: fastifyClientIp(request, platform.config.trustedProxies),
      userAgent: request.headers['user-agent'] ?? '',
      method: 'oauth2',
    });
  } catch (error) {
    if (error instanceof ConnectError) return page(error.rawMessage, 401);
    throw error;
  }

  const code = randomBytes(32).toString('base64url');
  await tenant.db.query(
    `INSERT INTO authorization_codes
       (code_hash, client_id, user_id, redirect_uri, scope, nonce, code_challenge, code_challenge_method, expires_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now() + make_interval(secs => $9))`,
    [
      sha256(code),
      authorization.client.client_id,
      user.id,
      authorization.redirectUri,
      authorization.scope.join(' '),
      authorization.nonce ?? null,
      authorization.codeChallenge ?? null,
      authorization.codeChallenge ? 'S256' : null,
      AUTHORIZATION_CODE_SECONDS,
    ],
  );
  await tenant.db.query("DELETE FROM authorization_codes WHERE expires_at < now() - interval '1 day'");
  platform.logger.info({ tenant: tenant.id, client: authorization.client.client_id, user: user.id }, 'authorization code issued');
  return reply.redirect(authorizationRedirect(tenant, authorization, { code }), 303);
}

function authorizationRedirect(tenant: TenantContext, authorization: AuthorizationRequest, result: Record<string, string>): string {
  const target = new URL(authorization.redirectUri);
  for (const [name, value] of Object.entries(result)) target.searchParams.set(name, value);
  if (authorization.state !== undefined) target.searchParams.set('state', authorization.state);
  target.searchParams.set('iss', tenant.issuer);
  return target.toString();
}

/**
 * Checks an authorization request. Problems with the client or redirect URI are shown on a
 * page, never redirected (RFC 6749 section 4.1.2.1); later problems go back to the app.
 */
async function validateAuthorization(
  tenant: TenantContext,
  parameters: Parameters,
): Promise<{ request: AuthorizationRequest } | { page: string } | { redirect: string }> {
  const client = await findClient(tenant.db, parameters.client_id ?? '');
  if (!client || !client.enabled) return { page: 'The app that sent you here is not registered with this tenant, or is disabled.' };
  const redirectUri = parameters.redirect_uri ?? (client.redirect_uris.length === 1 ? client.redirect_uris[0] : undefined);
  if (!redirectUri || !client.redirect_uris.includes(redirectUri)) {
    return { page: 'The redirect URI of this request is not registered for the app.' };
  }

  const base: AuthorizationRequest = { client, redirectUri, scope: [], state: parameters.state, nonce: parameters.nonce };
  const fail = (error: string, description: string) => ({
    redirect: authorizationRedirect(tenant, base, { error, error_description: description }),
  });
  if (parameters.response_type !== 'code') return fail('unsupported_response_type', 'response_type must be code');
  if (parameters.response_mode !== undefined && parameters.response_mode !== 'query') {
    return fail('invalid_request', 'response_mode must be query');
  }
  if (parameters.request !== undefined || parameters.request_uri !== undefined) {
    return fail('request_not_supported', 'request objects are not supported');
  }

  const scope = (parameters.scope ?? 'openid').split(' ').filter(Boolean);
  const notAllowed = scope.filter((name) => !client.allowed_scopes.includes(name));
  if (notAllowed.length > 0) return fail('invalid_scope', `the app may not request: ${notAllowed.join(' ')}`);

  const challenge = parameters.code_challenge;
  if (challenge === undefined) {
    if (client.type === 'public') return fail('invalid_request', 'public apps must send a PKCE code_challenge (S256)');
  } else {
    if (parameters.code_challenge_method !== 'S256') return fail('invalid_request', 'code_challenge_method must be S256');
    if (!PKCE_CHALLENGE.test(challenge)) return fail('invalid_request', 'code_challenge must be a base64url SHA-256');
  }
  return { request: { ...base, scope: [...new Set(scope)], codeChallenge: challenge } };
}

// ---- client authentication (RFC 6749 section 2.3)

async function authenticateClient(
  tenant: TenantContext,
  request: FastifyRequest,
  parameters: Parameters,
): Promise<ClientRow | (OAuthError & { basicChallenge?: boolean })> {
  const header = request.headers.authorization;
  let clientId = parameters.client_id;
  let secret = parameters.client_secret;
  let basic = false;
  if (header?.toLowerCase().startsWith('basic ')) {
    if (secret !== undefined) return oauthError(400, 'invalid_request', 'use one client authentication method, not two');
    const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) return { ...oauthError(401, 'invalid_client', 'malformed Basic credentials'), basicChallenge: true };
    const fromBasic = formDecode(decoded.slice(0, colon));
    if (clientId !== undefined && clientId !== fromBasic) {
      return oauthError(400, 'invalid_request', 'client_id differs from the Basic credentials');
    }
    clientId = fromBasic;
    secret = formDecode(decoded.slice(colon + 1));
    basic = true;
  }
  if (!clientId) return oauthError(401, 'invalid_client', 'client authentication is required');

  const client = await findClient(tenant.db, clientId);
  const failed = { ...oauthError(401, 'invalid_client', 'client authentication failed'), basicChallenge: basic };
  if (secret !== undefined) {
    if (!(await verifyClientSecret(client, secret)) || !client) return failed;
  } else if (!client || client.type !== 'public') {
    return failed;
  }
  if (!client.enabled) return failed;
  return client;
}

function formDecode(text: string): string {
  try {
    return decodeURIComponent(text.replaceAll('+', ' '));
  } catch {
    return text;
  }
}

// ---- token endpoint

const token: ProtocolHandler = async (platform, tenant, request, parameters) => {
  const client = await authenticateClient(tenant, request, parameters);
  if ('error' in client) return client;
  switch (parameters.grant_type) {
    case 'authorization_code':
      return exchangeCode(platform, tenant, client, parameters);
    case 'refresh_token':
      return refresh(platform, tenant, client, parameters);
    case 'client_credentials':
      return clientCredentials(tenant, client, parameters);
    case undefined:
      return oauthError(400, 'invalid_request', 'grant_type is required');
    default:
      return oauthError(400, 'unsupported_grant_type', `grant_type "${parameters.grant_type}" is not supported`);
  }
};

interface CodeRow {
  client_id: string;
  user_id: string;
  redirect_uri: string;
  scope: string;
  nonce: string | null;
  code_challenge: string | null;
  expired: boolean;
  used_at: Date | null;
  family_id: string | null;
}

async function exchangeCode(platform: Platform, tenant: TenantContext, client: ClientRow, parameters: Parameters) {
  if (!parameters.code) return oauthError(400, 'invalid_request', 'code is required');
  const invalidGrant = (description: string) => oauthError(400, 'invalid_grant', description);
  const settings = await tenant.settings();

  return inTransaction(tenant.db, async (db) => {
    const { rows } = await db.query<CodeRow>(
      `SELECT client_id, user_id, redirect_uri, scope, nonce, code_challenge, used_at, family_id,
              expires_at < now() AS expired
         FROM authorization_codes WHERE code_hash = $1 FOR UPDATE`,
      [sha256(parameters.code)],
    );
    const code = rows[0];
    if (!code || code.client_id !== client.client_id) return invalidGrant('the code is unknown or was issued to another app');
    if (code.used_at) {
      // A code presented twice may have been stolen: end what the first exchange started.
      if (code.family_id) {
        await db.query(
          "UPDATE refresh_families SET revoked_at = now(), revoke_reason = 'code reuse' WHERE id = $1 AND revoked_at IS NULL",
          [code.family_id],
        );
      }
      platform.logger.warn({ tenant: tenant.id, client: client.client_id }, 'authorization code presented twice');
      return invalidGrant('the code was already used');
    }
    if (code.expired) return invalidGrant('the code has expired');
    if (parameters.redirect_uri !== code.redirect_uri) return invalidGrant('redirect_uri differs from the authorization request');
    if (code.code_challenge) {
      const verifier = parameters.code_verifier ?? '';
      if (!PKCE_VERIFIER.test(verifier) || !safeEqual(sha256Base64url(verifier), code.code_challenge)) {
        return invalidGrant('code_verifier does not match the code_challenge');
      }
    } else if (parameters.code_verifier !== undefined) {
      return invalidGrant('the authorization request had no code_challenge');
    }

    const user = await findUserById(tenant.db, code.user_id);
    if (!user || user.status !== 'active') return invalidGrant('the user can no longer sign in');

    const scope = code.scope.split(' ').filter(Boolean);
    let refreshToken: string | undefined;
    let familyId: string | null = null;
    if (scope.includes('offline_access')) {
      const family = await startFamily(db, {
        userId: user.id,
        clientId: client.client_id,
        scope: code.scope,
        lifetimeSeconds: settings.refreshTokenLifetimeSeconds,
      });
      refreshToken = family.token;
      familyId = family.familyId;
    }
    await db.query('UPDATE authorization_codes SET used_at = now(), family_id = $2 WHERE code_hash = $1', [
      sha256(parameters.code),
      familyId,
    ]);

    const access = await issueClientAccessToken(tenant, { subject: user.id, roles: user.roles, scope: code.scope, clientId: client.client_id });
    const idToken = scope.includes('openid')
      ? await issueIdToken(tenant, user, client.client_id, code.nonce ?? undefined, scope)
      : undefined;
    return {
      body: {
        access_token: access.token,
        token_type: 'Bearer',
        expires_in: access.expiresIn,
        scope: code.scope,
        ...(refreshToken ? { refresh_token: refreshToken } : {}),
        ...(idToken ? { id_token: idToken } : {}),
      },
    };
  });
}

async function refresh(platform: Platform, tenant: TenantContext, client: ClientRow, parameters: Parameters) {
  if (!parameters.refresh_token) return oauthError(400, 'invalid_request', 'refresh_token is required');
  const invalidGrant = oauthError(400, 'invalid_grant', 'the refresh token is unknown, expired, revoked or was issued to another app');
  const { rows } = await tenant.db.query<{ client_id: string | null; scope: string }>(
    `SELECT f.client_id, f.scope FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
      WHERE t.token_hash = $1`,
    [hashRefreshToken(parameters.refresh_token)],
  );
  if (!rows[0] || rows[0].client_id !== client.client_id) return invalidGrant;

  const granted = rows[0].scope.split(' ').filter(Boolean);
  const requested = parameters.scope?.split(' ').filter(Boolean) ?? granted;
  if (requested.some((name) => !granted.includes(name))) {
    return oauthError(400, 'invalid_scope', 'a refresh may only narrow the granted scope');
  }

  let rotated;
  try {
    rotated = await rotateSession(tenant, platform.secretBox, parameters.refresh_token);
  } catch (error) {
    if (error instanceof ConnectError) return invalidGrant;
    throw error;
  }
  const user = await findUserById(tenant.db, rotated.userId);
  if (!user || user.status !== 'active') {
    await revokeFamilyOf(tenant.db, rotated.token);
    return invalidGrant;
  }
  const scope = requested.join(' ');
  const access = await issueClientAccessToken(tenant, { subject: user.id, roles: user.roles, scope, clientId: client.client_id });
  return {
    body: {
      access_token: access.token,
      token_type: 'Bearer',
      expires_in: access.expiresIn,
      scope,
      refresh_token: rotated.token,
    },
  };
}

/** Scopes that only make sense for a user and are never granted to an app acting for itself. */
const USER_ONLY_SCOPES = ['openid', 'profile', 'email', 'offline_access'];

async function clientCredentials(tenant: TenantContext, client: ClientRow, parameters: Parameters) {
  if (client.type !== 'confidential') {
    return oauthError(400, 'unauthorized_client', 'only confidential apps may use client_credentials');
  }
  const allowed = client.allowed_scopes.filter((name) => !USER_ONLY_SCOPES.includes(name));
  const requested = parameters.scope === undefined ? allowed : parameters.scope.split(' ').filter(Boolean);
  const notAllowed = requested.filter((name) => !allowed.includes(name));
  if (notAllowed.length > 0) return oauthError(400, 'invalid_scope', `the app may not request: ${notAllowed.join(' ')}`);
  const scope = [...new Set(requested)].join(' ');
  const access = await issueClientAccessToken(tenant, { subject: client.client_id, roles: [], scope, clientId: client.client_id });
  return { body: { access_token: access.token, token_type: 'Bearer', expires_in: access.expiresIn, scope } };
}

// ---- tokens

/**
 * Issues an access token in the same form as TenantAuth's (RFC 9068 `at+jwt`, RS256, the
 * tenant's active key, `tid`, `scope`, `roles`), plus the `client_id` claim RFC 9068 asks for,
 * so Tansu's own APIs accept it and revocation can tell which app it belongs to.
 */
async function issueClientAccessToken(
  tenant: TenantContext,
  input: { subject: string; roles: string[]; scope: string; clientId: string },
): Promise<{ token: string; expiresIn: number }> {
  const settings = await tenant.settings();
  const signer = await tenant.keys.activeKey();
  const now = Math.floor(Date.now() / 1000);
  const lifetime = settings.accessTokenLifetimeSeconds;
  const jwt = await new SignJWT({ tid: tenant.id, scope: input.scope, roles: input.roles, client_id: input.clientId })
    .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: signer.kid, typ: ACCESS_TOKEN_TYPE })
    .setIssuer(tenant.issuer)
    .setSubject(input.subject)
    .setAudience(tenant.id)
    .setJti(randomUUID())
    .setIssuedAt(now)
    .setExpirationTime(now + lifetime)
    .sign(signer.privateKey);
  return { token: jwt, expiresIn: lifetime };
}

async function issueIdToken(tenant: TenantContext, user: UserRow, clientId: string, nonce: string | undefined, scope: string[]) {
  const settings = await tenant.settings();
  const signer = await tenant.keys.activeKey();
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({
    tid: tenant.id,
    auth_time: now,
    ...(nonce !== undefined ? { nonce } : {}),
    ...userClaims(user, scope),
  })
    .setProtectedHeader({ alg: SIGNING_ALGORITHM, kid: signer.kid, typ: 'JWT' })
    .setIssuer(tenant.issuer)
    .setSubject(user.id)
    .setAudience(clientId)
    .setIssuedAt(now)
    .setExpirationTime(now + settings.accessTokenLifetimeSeconds)
    .sign(signer.privateKey);
}

function userClaims(user: UserRow, scope: string[]): Record<string, unknown> {
  return {
    ...(scope.includes('email') ? { email: user.email, email_verified: user.email_verified } : {}),
    ...(scope.includes('profile') ? { name: user.display_name, roles: user.roles } : {}),
  };
}

/** Verifies a JWT access token of the tenant and checks it was not revoked. */
async function activeAccessToken(tenant: TenantContext, token: string): Promise<(AccessTokenClaims & { client_id?: string }) | undefined> {
  let claims: AccessTokenClaims;
  try {
    claims = await verifyAccessToken(token, {
      issuer: tenant.issuer,
      tenant: tenant.id,
      resolveKey: (kid) => tenant.keys.verificationKey(kid),
    });
  } catch {
    return undefined;
  }
  const revoked = await tenant.db.query('SELECT 1 FROM revoked_access_tokens WHERE jti = $1', [claims.jti]);
  if (revoked.rowCount) return undefined;
  const payload = JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
  return { ...claims, client_id: typeof payload.client_id === 'string' ? payload.client_id : undefined };
}

// ---- revocation (RFC 7009)

const revoke: ProtocolHandler = async (platform, tenant, request, parameters) => {
  const client = await authenticateClient(tenant, request, parameters);
  if ('error' in client) return client;
  if (!parameters.token) return oauthError(400, 'invalid_request', 'token is required');

  const { rows } = await tenant.db.query<{ client_id: string | null }>(
    `SELECT f.client_id FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id WHERE t.token_hash = $1`,
    [hashRefreshToken(parameters.token)],
  );
  if (rows[0]) {
    if (rows[0].client_id === client.client_id) await revokeFamilyOf(tenant.db, parameters.token);
    return { body: {} };
  }
  const claims = await activeAccessToken(tenant, parameters.token);
  if (claims && claims.client_id === client.client_id) {
    await tenant.db.query(
      'INSERT INTO revoked_access_tokens (jti, expires_at) VALUES ($1, to_timestamp($2)) ON CONFLICT DO NOTHING',
      [claims.jti, claims.exp],
    );
    tenant.tokenStatus.markRevoked(claims.jti);
    await tenant.db.query('DELETE FROM revoked_access_tokens WHERE expires_at < now()');
    platform.logger.info({ tenant: tenant.id, client: client.client_id }, 'access token revoked');
  }
  // Unknown tokens and tokens of other apps get the same empty answer (RFC 7009 section 2.2).
  return { body: {} };
};

// ---- introspection (RFC 7662)

const introspect: ProtocolHandler = async (_platform, tenant, request, parameters) => {
  const client = await authenticateClient(tenant, request, parameters);
  if ('error' in client) return client;
  if (client.type !== 'confidential') {
    return { ...oauthError(401, 'invalid_client', 'only confidential apps may introspect tokens') };
  }
  if (!parameters.token) return oauthError(400, 'invalid_request', 'token is required');

  const claims = await activeAccessToken(tenant, parameters.token);
  if (claims) {
    return {
      body: {
        active: true,
        token_type: 'Bearer',
        scope: claims.scope,
        client_id: claims.client_id,
        sub: claims.sub,
        aud: claims.aud,
        iss: claims.iss,
        exp: claims.exp,
        iat: claims.iat,
        jti: claims.jti,
        tid: claims.tid,
      },
    };
  }
  const { rows } = await tenant.db.query<{ client_id: string | null; user_id: string; scope: string; exp: number }>(
    `SELECT f.client_id, f.user_id, f.scope, extract(epoch FROM t.expires_at)::bigint AS exp
       FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
      WHERE t.token_hash = $1 AND t.used_at IS NULL AND t.expires_at > now()
        AND f.revoked_at IS NULL AND f.expires_at > now()`,
    [hashRefreshToken(parameters.token)],
  );
  const row = rows[0];
  if (!row) return { body: { active: false } };
  return {
    body: {
      active: true,
      token_type: 'refresh_token',
      scope: row.scope,
      client_id: row.client_id ?? undefined,
      sub: row.user_id,
      exp: Number(row.exp),
      iss: tenant.issuer,
      tid: tenant.id,
    },
  };
};

// ---- userinfo (OpenID Connect Core section 5.3)

async function userinfo(platform: Platform, request: FastifyRequest, reply: FastifyReply) {
  reply.header('cache-control', 'no-store');
  const challenge = (status: number, error: string, description: string) =>
    reply
      .status(status)
      .header('www-authenticate', `Bearer error="${error}", error_description="${description}"`)
      .send({ error, error_description: description });

  const tenant = await tenantOfRoute(platform, request);
  if (!tenant) return challenge(401, 'invalid_token', 'unknown tenant');
  const header = request.headers.authorization ?? '';
  const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
  if (!match) return challenge(401, 'invalid_request', 'send the access token as a Bearer Authorization header');

  const claims = await activeAccessToken(tenant, match[1]);
  if (!claims) return challenge(401, 'invalid_token', 'the access token is invalid, expired or revoked');
  const scope = claims.scope.split(' ');
  if (!scope.includes('openid')) return challenge(403, 'insufficient_scope', 'the access token lacks the openid scope');
  const user = await findUserById(tenant.db, claims.sub);
  if (!user || user.status !== 'active') return challenge(401, 'invalid_token', 'the user of this token cannot sign in');
  return reply.send({ sub: user.id, ...userClaims(user, scope) });
}

// ---- hashing

function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('hex');
}

function sha256Base64url(text: string): string {
  return createHash('sha256').update(text, 'ascii').digest('base64url');
}

function safeEqual(a: string, b: string): boolean {
  const left = Buffer.from(a);
  const right = Buffer.from(b);
  return left.length === right.length && timingSafeEqual(left, right);
}

import { createHash, randomBytes } from 'node:crypto';

import { ConnectError } from '@connectrpc/connect';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { inTransaction } from '../../db/pool-handle.ts';
import type { Platform } from '../../platform/platform.ts';
import type { TenantContext } from '../../platform/tenant-registry.ts';
import { fastifyClientIp } from '../../server/client-ip.ts';
import { normalizeEmail } from '../passwords.ts';
import { startSession } from '../sessions.ts';
import { findUserById, toUserMessage, type UserRow } from '../users.ts';
import { callbackUrl, findProvider, providerConfig } from './provider-settings.ts';
import { ProviderUrlError } from './provider-urls.ts';
import { authorizationUrl, completeAuthorization, type ExternalProfile, type PendingSecrets } from './providers.ts';

/** How long a browser may take at the provider before the callback, in seconds. */
const PENDING_SECONDS = 600;

/** Error of a social sign-in, answered as JSON `{ error, message }`. */
class SocialSignInError extends Error {
  readonly status: number;
  readonly code: string;
  constructor(status: number, code: string, message: string) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

/**
 * Error sent as a google.rpc.Status body with an ErrorInfo, like the gateway's errors:
 * `{ code, message, details: [{ '@type', reason, domain, metadata }] }`.
 */
class StatusError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, code: number, reason: string, message: string, metadata: Record<string, string> = {}) {
    super(message);
    this.status = status;
    this.body = {
      code,
      message,
      details: [{ '@type': 'type.googleapis.com/google.rpc.ErrorInfo', reason, domain: 'tansu.dev', metadata }],
    };
  }
}

/**
 * Rejects a NUL character (U+0000) in a path or query parameter: PostgreSQL cannot store it
 * in text, so it would fail later as an internal error.
 */
function rejectNul(request: FastifyRequest) {
  const params = request.params as Record<string, string>;
  const query = new URLSearchParams(request.url.split('?')[1] ?? '');
  for (const [name, value] of [...Object.entries(params), ...query]) {
    if (name.includes('\0') || value.includes('\0')) {
      const message = `${name.replaceAll('\0', '')} contains a NUL character (\\u0000), which is not allowed`;
      throw new StatusError(400, 3, 'INVALID_ARGUMENT', message, { field: name.replaceAll('\0', '') });
    }
  }
}

/**
 * Mounts `GET /identity/api/<tenant>/auth/authorize/<provider>`, which redirects to the
 * provider with state and PKCE, and `GET .../auth/callback/<provider>`, which completes the
 * sign-in and answers with Tansu tokens as JSON.
 */
export function registerSocialSignIn(app: FastifyInstance, platform: Platform): void {
  app.get('/identity/api/:tenant/auth/authorize/:provider', (request, reply) =>
    answer(reply, () => start(platform, request, reply)),
  );
  app.get('/identity/api/:tenant/auth/callback/:provider', (request, reply) =>
    answer(reply, () => callback(platform, request, reply)),
  );
}

async function answer(reply: FastifyReply, work: () => Promise<unknown>) {
  reply.header('cache-control', 'no-store');
  try {
    return await work();
  } catch (error) {
    if (error instanceof StatusError) return reply.status(error.status).send(error.body);
    if (error instanceof SocialSignInError) return reply.status(error.status).send({ error: error.code, message: error.message });
    throw error;
  }
}

async function configured(platform: Platform, request: FastifyRequest) {
  rejectNul(request);
  const { tenant: tenantId, provider } = request.params as { tenant: string; provider: string };
  let tenant: TenantContext;
  try {
    tenant = await platform.tenants.get(tenantId);
  } catch (error) {
    if (error instanceof ConnectError) throw new SocialSignInError(404, 'not_found', `tenant "${tenantId}" does not exist`);
    throw error;
  }
  const row = await findProvider(tenant.db, provider);
  if (!row || !row.enabled) {
    throw new SocialSignInError(404, 'not_found', `sign-in with ${provider} is not enabled for this tenant`);
  }
  const config = providerConfig(tenant, platform.secretBox, row, platform.config.allowPrivateProviderUrls);
  return { tenant, config, callback: callbackUrl(platform.publicBaseUrl(), tenant.id, row.provider) };
}

/** Returns the ProviderUrlError an error is, or wraps as its cause; undefined for others. */
function urlErrorOf(error: unknown): ProviderUrlError | undefined {
  if (error instanceof ProviderUrlError) return error;
  if (error instanceof Error && error.cause instanceof ProviderUrlError) return error.cause;
  return undefined;
}

const hashState = (state: string) => createHash('sha256').update(state).digest('hex');
const secretsAssociatedData = (tenant: TenantContext, provider: string) => `tenant:${tenant.id}:login-state:${provider}`;

async function start(platform: Platform, request: FastifyRequest, reply: FastifyReply) {
  const { tenant, config, callback } = await configured(platform, request);
  const state = randomBytes(32).toString('base64url');
  let redirect: { url: string; secrets: PendingSecrets };
  try {
    redirect = await authorizationUrl(config, callback, state);
  } catch (error) {
    const rejected = urlErrorOf(error);
    if (rejected) {
      platform.logger.warn({ tenant: tenant.id, provider: config.kind, err: rejected }, 'provider URL rejected');
      throw new StatusError(400, 9, 'FAILED_PRECONDITION', `the ${config.kind} provider URL may not be used: ${rejected.message}`);
    }
    platform.logger.warn({ tenant: tenant.id, provider: config.kind, err: error }, 'provider metadata could not be read');
    throw new SocialSignInError(502, 'provider_unavailable', `${config.kind} could not be reached; try again later`);
  }
  await tenant.db.query(
    `INSERT INTO external_login_states (state_hash, provider, secrets_sealed, expires_at)
     VALUES ($1, $2, $3, now() + make_interval(secs => $4))`,
    [
      hashState(state),
      config.kind,
      platform.secretBox.encrypt(JSON.stringify(redirect.secrets), secretsAssociatedData(tenant, config.kind)),
      PENDING_SECONDS,
    ],
  );
  await tenant.db.query('DELETE FROM external_login_states WHERE expires_at < now()');
  return reply.redirect(redirect.url, 302);
}

async function callback(platform: Platform, request: FastifyRequest, reply: FastifyReply) {
  const { tenant, config, callback: callbackBase } = await configured(platform, request);
  const currentUrl = new URL(request.url, callbackBase);
  const state = currentUrl.searchParams.get('state') ?? '';

  // Deleting the pending row makes each state usable once.
  const { rows } = await tenant.db.query<{ secrets_sealed: string; expired: boolean }>(
    `DELETE FROM external_login_states WHERE state_hash = $1 AND provider = $2
     RETURNING secrets_sealed, expires_at < now() AS expired`,
    [hashState(state), config.kind],
  );
  if (!rows[0] || rows[0].expired) {
    throw new SocialSignInError(400, 'invalid_state', 'the sign-in link is unknown, used or expired; start the sign-in again');
  }
  const providerError = currentUrl.searchParams.get('error');
  if (providerError) throw new SocialSignInError(401, 'access_denied', `${config.kind} returned an error: ${providerError}`);

  const secrets = JSON.parse(platform.secretBox.decrypt(rows[0].secrets_sealed, secretsAssociatedData(tenant, config.kind)));
  let profile: ExternalProfile;
  try {
    profile = await completeAuthorization(config, callbackBase, currentUrl, state, secrets);
  } catch (error) {
    platform.logger.warn({ tenant: tenant.id, provider: config.kind, err: error }, 'social sign-in failed at the provider');
    throw new SocialSignInError(401, 'provider_rejected', `${config.kind} sign-in failed; start the sign-in again`);
  }

  const user = await resolveUser(tenant, config.kind, profile);
  const ip = fastifyClientIp(request, platform.config.trustedProxies);
  await tenant.db.query(
    `INSERT INTO login_activity (user_id, email, ip, user_agent, result, method) VALUES ($1, $2, $3, $4, 'success', $5)`,
    [user.id, user.email, ip, String(request.headers['user-agent'] ?? '').slice(0, 512), config.kind],
  );
  await tenant.db.query('UPDATE users SET last_sign_in_at = now(), last_sign_in_ip = $2 WHERE id = $1', [user.id, ip]);
  const tokens = await startSession(tenant, user);
  platform.logger.info({ tenant: tenant.id, provider: config.kind, user: user.id }, 'user signed in with a provider');
  return reply.send({ ...tokens, user: toUserMessageJson(user) });
}

/**
 * Finds the user of a provider account: an existing link; else the user with the same email,
 * linked only when the provider says the email is verified; else a new user. Records the link.
 */
async function resolveUser(tenant: TenantContext, provider: string, profile: ExternalProfile): Promise<UserRow> {
  const userId = await inTransaction(tenant.db, async (db) => {
    const linked = await db.query<{ user_id: string }>(
      'SELECT user_id FROM external_logins WHERE provider = $1 AND provider_user_id = $2',
      [provider, profile.id],
    );
    if (linked.rows[0]) return linked.rows[0].user_id;

    if (!profile.email) throw new SocialSignInError(400, 'email_missing', `${provider} did not share an email address`);
    const email = normalizeEmail(profile.email);
    const existing = await db.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [email]);
    let id: string;
    if (existing.rows[0]) {
      if (!profile.emailVerified) {
        throw new SocialSignInError(
          409,
          'email_not_verified',
          `a user with ${email} exists, and ${provider} does not state that the address is verified, so the accounts are not linked`,
        );
      }
      id = existing.rows[0].id;
    } else {
      const created = await db.query<{ id: string }>(
        'INSERT INTO users (email, email_verified, display_name) VALUES ($1, $2, $3) RETURNING id',
        [email, profile.emailVerified, profile.name.slice(0, 200)],
      );
      id = created.rows[0].id;
      await db.query("INSERT INTO user_roles (user_id, role) VALUES ($1, 'User')", [id]);
    }
    await db.query('INSERT INTO external_logins (provider, provider_user_id, user_id, email) VALUES ($1, $2, $3, $4)', [
      provider,
      profile.id,
      id,
      email,
    ]);
    return id;
  });
  const user = await findUserById(tenant.db, userId);
  if (!user || user.status !== 'active') throw new SocialSignInError(401, 'user_disabled', 'this user may not sign in');
  return user;
}

function toUserMessageJson(user: UserRow) {
  const message = toUserMessage(user);
  return {
    id: message.id,
    email: message.email,
    emailVerified: message.emailVerified,
    displayName: message.displayName,
    roles: message.roles,
  };
}

import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';

import {
  CreateOAuthProviderResponseSchema,
  DeleteOAuthProviderResponseSchema,
  ListOAuthProvidersResponseSchema,
  OAuthProviderSchema,
  OAuthProviders,
  TestOAuthProviderResponseSchema,
  UpdateOAuthProviderResponseSchema,
} from '#gen/tansu/identity/v1/oauth_providers_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { inTransaction } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import {
  callbackUrl,
  findProvider,
  maskSecret,
  providerConfig,
  providerSecretAssociatedData,
  type ProviderRow,
} from './social/provider-settings.ts';
import { providerUrlProblem, ProviderUrlError } from './social/provider-urls.ts';
import { checkCredentials, PROVIDER_KINDS, type ProviderKind } from './social/providers.ts';
import { recordAudit, requireTenantAdmin } from './tenant-admin.ts';

interface ProviderInput {
  providerId: string;
  clientId: string;
  clientSecret: string;
  enabled?: boolean;
  issuer: string;
  webBaseUrl: string;
  apiBaseUrl: string;
}

/** Registers the OAuthProviders service. */
export function oauthProvidersRoutes(platform: Platform) {
  const allowPrivate = platform.config.allowPrivateProviderUrls;
  const toMessage = (tenant: TenantContext, row: ProviderRow) =>
    create(OAuthProviderSchema, {
      providerId: row.provider,
      clientId: row.client_id,
      clientSecretMasked: maskSecret(providerConfig(tenant, platform.secretBox, row, allowPrivate).clientSecret),
      enabled: row.enabled,
      status: row.status,
      callbackUrl: callbackUrl(platform.publicBaseUrl(), tenant.id, row.provider),
      issuer: row.settings.issuer ?? '',
      webBaseUrl: row.settings.webBaseUrl ?? '',
      apiBaseUrl: row.settings.apiBaseUrl ?? '',
      updateTime: timestampFromDate(row.updated_at),
    });

  return (router: ConnectRouter) =>
    router.service(OAuthProviders, {
      async createOAuthProvider(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const input = checkInput(request, true, allowPrivate);
        const sealed = platform.secretBox.encrypt(input.clientSecret, providerSecretAssociatedData(tenant.id, input.providerId));
        const row = await inTransaction(tenant.db, async (db) => {
          const { rows } = await db.query<ProviderRow>(
            `INSERT INTO external_providers (provider, client_id, client_secret_encrypted, settings, enabled)
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (provider) DO NOTHING RETURNING *`,
            [input.providerId, input.clientId, sealed, settingsOf(input), input.enabled ?? true],
          );
          if (!rows[0]) {
            throw domainError('ALREADY_EXISTS', `${input.providerId} is already configured; change it with UpdateOAuthProvider`, {
              metadata: { field: 'provider_id' },
            });
          }
          await recordAudit(db, { actor: caller.subject, action: 'oauth_provider.create', target: input.providerId, details: auditDetails(input) });
          return rows[0];
        });
        return create(CreateOAuthProviderResponseSchema, { provider: toMessage(tenant, row) });
      },

      async listOAuthProviders(request, context) {
        const { tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'oauth-providers') ?? '';
        const { rows } = await tenant.db.query<ProviderRow>(
          'SELECT * FROM external_providers WHERE provider > $1 ORDER BY provider LIMIT $2',
          [after, size + 1],
        );
        const page = rows.slice(0, size);
        return create(ListOAuthProvidersResponseSchema, {
          providers: page.map((row) => toMessage(tenant, row)),
          nextPageToken: rows.length > size ? encodePageToken('oauth-providers', page[page.length - 1].provider) : '',
        });
      },

      async updateOAuthProvider(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const input = checkInput(request, false, allowPrivate);
        const row = await inTransaction(tenant.db, async (db) => {
          const sealed = input.clientSecret
            ? platform.secretBox.encrypt(input.clientSecret, providerSecretAssociatedData(tenant.id, input.providerId))
            : null;
          const { rows } = await db.query<ProviderRow>(
            `UPDATE external_providers SET client_id = $2, client_secret_encrypted = coalesce($3, client_secret_encrypted),
               settings = $4, enabled = $5, status = 'untested', updated_at = now()
             WHERE provider = $1 RETURNING *`,
            [input.providerId, input.clientId, sealed, settingsOf(input), input.enabled ?? true],
          );
          if (!rows[0]) throw providerNotFound(input.providerId);
          await recordAudit(db, { actor: caller.subject, action: 'oauth_provider.update', target: input.providerId, details: auditDetails(input) });
          return rows[0];
        });
        return create(UpdateOAuthProviderResponseSchema, { provider: toMessage(tenant, row) });
      },

      async deleteOAuthProvider(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        await inTransaction(tenant.db, async (db) => {
          const deleted = await db.query('DELETE FROM external_providers WHERE provider = $1', [request.providerId]);
          if (deleted.rowCount === 0) throw providerNotFound(request.providerId);
          await recordAudit(db, { actor: caller.subject, action: 'oauth_provider.delete', target: request.providerId });
        });
        return create(DeleteOAuthProviderResponseSchema, {});
      },

      async testOAuthProvider(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const row = await findProvider(tenant.db, request.providerId);
        if (!row) throw providerNotFound(request.providerId);
        let problem: string | undefined;
        try {
          problem = await checkCredentials(
            providerConfig(tenant, platform.secretBox, row, allowPrivate),
            callbackUrl(platform.publicBaseUrl(), tenant.id, row.provider),
          );
        } catch (error) {
          if (!(error instanceof ProviderUrlError)) throw error;
          throw domainError('FAILED_PRECONDITION', `the provider URL may not be used: ${error.message}`, { cause: error });
        }
        const status = problem === undefined ? 'active' : `error: ${problem.slice(0, 300)}`;
        await tenant.db.query('UPDATE external_providers SET status = $2 WHERE provider = $1', [row.provider, status]);
        await recordAudit(tenant.db, { actor: caller.subject, action: 'oauth_provider.test', target: row.provider, details: { status } });
        return create(TestOAuthProviderResponseSchema, { active: problem === undefined, status });
      },
    });
}

function providerNotFound(providerId: string) {
  return domainError('NOT_FOUND', `${providerId} is not configured for this tenant`, { metadata: { field: 'provider_id' } });
}

function checkInput(
  request: ProviderInput,
  secretRequired: boolean,
  allowPrivate: boolean,
): ProviderInput & { providerId: ProviderKind } {
  if (!PROVIDER_KINDS.includes(request.providerId as ProviderKind)) {
    throw invalidArgument('provider_id', `provider_id must be one of ${PROVIDER_KINDS.join(', ')}`);
  }
  if (!request.clientId.trim() || request.clientId.length > 500) {
    throw invalidArgument('client_id', 'client_id must be 1 to 500 characters');
  }
  if ((secretRequired && !request.clientSecret) || request.clientSecret.length > 1000) {
    throw invalidArgument('client_secret', 'client_secret is required, at most 1000 characters');
  }
  for (const field of ['issuer', 'webBaseUrl', 'apiBaseUrl'] as const) {
    const value = request[field];
    if (!value) continue;
    const problem = providerUrlProblem(value, allowPrivate);
    if (problem) {
      const name = field.replace(/[A-Z]/g, (letter) => `_${letter.toLowerCase()}`);
      throw invalidArgument(name, `${name}: ${problem}`);
    }
  }
  return { ...request, clientId: request.clientId.trim(), providerId: request.providerId as ProviderKind };
}

function settingsOf(input: ProviderInput): string {
  return JSON.stringify({
    ...(input.issuer ? { issuer: input.issuer } : {}),
    ...(input.webBaseUrl ? { webBaseUrl: input.webBaseUrl } : {}),
    ...(input.apiBaseUrl ? { apiBaseUrl: input.apiBaseUrl } : {}),
  });
}

/** What an audit entry records of a change: everything but the secret, and whether it changed. */
function auditDetails(input: ProviderInput): Record<string, unknown> {
  return {
    clientId: input.clientId,
    secretChanged: Boolean(input.clientSecret),
    enabled: input.enabled ?? true,
    issuer: input.issuer || undefined,
    webBaseUrl: input.webBaseUrl || undefined,
    apiBaseUrl: input.apiBaseUrl || undefined,
  };
}

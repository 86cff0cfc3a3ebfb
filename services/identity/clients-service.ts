import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';

import {
  ClientSchema,
  Clients,
  CreateClientResponseSchema,
  DeleteClientResponseSchema,
  GetClientResponseSchema,
  ListClientsResponseSchema,
  UpdateClientResponseSchema,
  type Client,
} from '#gen/tansu/identity/v1/clients_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { inTransaction } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import {
  clientCursor,
  DEFAULT_CLIENT_SCOPES,
  findClient,
  KNOWN_SCOPES,
  listClients,
  newClientId,
  newClientSecret,
  redirectUriProblem,
  type ClientRow,
} from './clients.ts';
import { recordAudit, requireTenantAdmin } from './tenant-admin.ts';

const UPDATABLE_FIELDS = ['name', 'redirect_uris', 'allowed_scopes', 'enabled'];

/** Registers the Clients service. */
export function clientsRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(Clients, {
      async createClient(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const name = checkName(request.name);
        if (request.type !== 'public' && request.type !== 'confidential') {
          throw invalidArgument('type', 'type must be "public" or "confidential"');
        }
        const redirectUris = checkRedirectUris(request.redirectUris);
        if (request.type === 'public' && redirectUris.length === 0) {
          throw invalidArgument('redirect_uris', 'a public app needs at least one redirect URI');
        }
        const scopes = checkScopes(request.allowedScopes.length > 0 ? request.allowedScopes : DEFAULT_CLIENT_SCOPES);

        const clientId = newClientId();
        const secret = request.type === 'confidential' ? await newClientSecret() : undefined;
        const row = await inTransaction(tenant.db, async (db) => {
          const { rows } = await db.query<ClientRow>(
            `INSERT INTO clients (client_id, name, type, secret_hash, redirect_uris, allowed_scopes)
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING *`,
            [clientId, name, request.type, secret?.hash ?? null, redirectUris, scopes],
          );
          await recordAudit(db, {
            actor: caller.subject,
            action: 'client.create',
            target: clientId,
            details: { name, type: request.type, redirectUris, allowedScopes: scopes },
          });
          return rows[0];
        });
        platform.logger.info({ tenant: tenant.id, client: clientId, type: request.type }, 'client registered');
        return create(CreateClientResponseSchema, {
          clientId,
          clientSecret: secret?.secret ?? '',
          client: toClientMessage(row),
        });
      },

      async getClient(request, context) {
        const { tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const row = await findClient(tenant.db, request.clientId);
        if (!row) throw clientNotFound(request.clientId);
        return create(GetClientResponseSchema, { client: toClientMessage(row) });
      },

      async listClients(request, context) {
        const { tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'clients');
        const rows = await listClients(tenant.db, size + 1, after);
        const page = rows.slice(0, size);
        return create(ListClientsResponseSchema, {
          clients: page.map(toClientMessage),
          nextPageToken: rows.length > size ? encodePageToken('clients', clientCursor(page[page.length - 1])) : '',
        });
      },

      async updateClient(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        const paths = request.updateMask?.paths ?? [];
        if (paths.length === 0) {
          throw invalidArgument('update_mask', `update_mask must name at least one of ${UPDATABLE_FIELDS.join(', ')}`);
        }
        const changes: Record<string, unknown> = {};
        for (const path of paths) {
          const value = request.client?.[fieldName(path)];
          switch (path) {
            case 'name':
              changes.name = checkName(String(value ?? ''));
              break;
            case 'redirect_uris':
              changes.redirect_uris = checkRedirectUris((value as string[] | undefined) ?? []);
              break;
            case 'allowed_scopes':
              changes.allowed_scopes = checkScopes((value as string[] | undefined) ?? []);
              break;
            case 'enabled':
              changes.enabled = Boolean(value);
              break;
            default:
              throw invalidArgument('update_mask', `"${path}" cannot be changed; use ${UPDATABLE_FIELDS.join(', ')}`);
          }
        }

        const row = await inTransaction(tenant.db, async (db) => {
          const current = await findClient(db, request.clientId);
          if (!current) throw clientNotFound(request.clientId);
          if (current.type === 'public' && Array.isArray(changes.redirect_uris) && changes.redirect_uris.length === 0) {
            throw invalidArgument('redirect_uris', 'a public app needs at least one redirect URI');
          }
          const columns = Object.keys(changes);
          const { rows } = await db.query<ClientRow>(
            `UPDATE clients SET ${columns.map((column, index) => `${column} = $${index + 2}`).join(', ')}
             WHERE client_id = $1 RETURNING *`,
            [request.clientId, ...columns.map((column) => changes[column])],
          );
          await recordAudit(db, { actor: caller.subject, action: 'client.update', target: request.clientId, details: changes });
          return rows[0];
        });
        // Tokens the app got for itself follow a disable or enable at once in this process.
        tenant.tokenStatus.forgetSubject(request.clientId);
        return create(UpdateClientResponseSchema, { client: toClientMessage(row) });
      },

      async deleteClient(request, context) {
        const { caller, tenant } = await requireTenantAdmin(platform, context, request.tenant);
        await inTransaction(tenant.db, async (db) => {
          const deleted = await db.query('DELETE FROM clients WHERE client_id = $1 RETURNING name', [request.clientId]);
          if (deleted.rowCount === 0) throw clientNotFound(request.clientId);
          // Sessions the app started end with it.
          await db.query(
            "UPDATE refresh_families SET revoked_at = now(), revoke_reason = 'client deleted' WHERE client_id = $1 AND revoked_at IS NULL",
            [request.clientId],
          );
          await recordAudit(db, {
            actor: caller.subject,
            action: 'client.delete',
            target: request.clientId,
            details: { name: deleted.rows[0].name },
          });
        });
        tenant.tokenStatus.forgetSubject(request.clientId);
        return create(DeleteClientResponseSchema, {});
      },
    });
}

function fieldName(path: string): keyof Client {
  return path.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase()) as keyof Client;
}

function clientNotFound(clientId: string) {
  return domainError('NOT_FOUND', `no client with id "${clientId}" in this tenant`, { metadata: { field: 'client_id' } });
}

function checkName(raw: string): string {
  const name = raw.trim();
  if (name.length === 0 || name.length > 200) throw invalidArgument('name', 'name must be 1 to 200 characters');
  return name;
}

function checkRedirectUris(uris: string[]): string[] {
  if (uris.length > 20) throw invalidArgument('redirect_uris', 'at most 20 redirect URIs per app');
  for (const uri of uris) {
    const problem = redirectUriProblem(uri);
    if (problem) throw invalidArgument('redirect_uris', problem);
  }
  return [...new Set(uris)];
}

function checkScopes(scopes: string[]): string[] {
  for (const scope of scopes) {
    if (!KNOWN_SCOPES.includes(scope)) {
      throw invalidArgument('allowed_scopes', `unknown scope "${scope}"; known scopes are ${KNOWN_SCOPES.join(', ')}`);
    }
  }
  return [...new Set(scopes)];
}

/** Converts a client row to its API message; the secret hash never leaves this function. */
export function toClientMessage(row: ClientRow): Client {
  return create(ClientSchema, {
    clientId: row.client_id,
    name: row.name,
    type: row.type,
    redirectUris: row.redirect_uris,
    allowedScopes: row.allowed_scopes,
    enabled: row.enabled,
    createTime: timestampFromDate(row.created_at),
  });
}

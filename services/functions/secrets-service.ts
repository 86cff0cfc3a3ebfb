import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  DeleteSecretResponseSchema,
  ListSecretsResponseSchema,
  SecretSchema,
  Secrets,
  SetSecretResponseSchema,
} from '#gen/tansu/functions/v1/secrets_pb.js';
import { domainError, invalidArgument } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import { requestedTenant, requireTenantCaller } from '../identity/authenticate.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { assertSecretName, MAX_SECRET_BYTES, writeSecret } from './secrets.ts';

interface SecretRow {
  name: string;
  createdAt: Date;
  updatedAt: Date;
}

function toSecretMessage(row: SecretRow) {
  return create(SecretSchema, {
    name: row.name,
    createTime: timestampFromDate(row.createdAt),
    updateTime: timestampFromDate(row.updatedAt),
  });
}

const SELECT_SECRET = 'SELECT name, created_at AS "createdAt", updated_at AS "updatedAt" FROM secrets';

/** Registers the Secrets service. Values are never logged or returned. */
export function secretsRoutes(platform: Platform) {
  async function adminTenant(fieldValue: string, context: HandlerContext): Promise<{ tenant: TenantContext; subject: string }> {
    const tenantId = requestedTenant(fieldValue, context.requestHeader);
    const caller = await requireTenantCaller(platform, context, tenantId, { role: 'TenantAdmin', allowPlatformAdmin: true });
    return { tenant: await platform.tenants.get(tenantId), subject: caller.subject };
  }

  return (router: ConnectRouter) =>
    router.service(Secrets, {
      async setSecret(request, context) {
        const { tenant, subject } = await adminTenant(request.tenant, context);
        assertSecretName(request.name);
        if (Buffer.byteLength(request.value) > MAX_SECRET_BYTES) {
          throw invalidArgument('value', `value is larger than ${MAX_SECRET_BYTES} bytes; store a smaller value`);
        }
        await writeSecret(platform.secretBox, tenant, request.name, request.value);
        platform.logger.info({ tenant: tenant.id, secretName: request.name, author: subject }, 'secret set');
        const { rows } = await tenant.db.query<SecretRow>(`${SELECT_SECRET} WHERE name = $1`, [request.name]);
        return create(SetSecretResponseSchema, { secret: toSecretMessage(rows[0]!) });
      },

      async listSecrets(request, context) {
        const { tenant } = await adminTenant(request.tenant, context);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'secrets') ?? '';
        const { rows } = await tenant.db.query<SecretRow>(`${SELECT_SECRET} WHERE name > $1 ORDER BY name LIMIT $2`, [
          after,
          size + 1,
        ]);
        const page = rows.slice(0, size);
        return create(ListSecretsResponseSchema, {
          secrets: page.map(toSecretMessage),
          nextPageToken: rows.length > size ? encodePageToken('secrets', page[page.length - 1]!.name) : '',
        });
      },

      async deleteSecret(request, context) {
        const { tenant, subject } = await adminTenant(request.tenant, context);
        assertSecretName(request.name);
        const deleted = await tenant.db.query('DELETE FROM secrets WHERE name = $1', [request.name]);
        if (deleted.rowCount === 0) throw domainError('NOT_FOUND', `secret "${request.name}" does not exist`);
        platform.logger.info({ tenant: tenant.id, secretName: request.name, author: subject }, 'secret deleted');
        return create(DeleteSecretResponseSchema, {});
      },
    });
}

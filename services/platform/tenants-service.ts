import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter } from '@connectrpc/connect';

import { TenantSchema, TenantState, type Tenant } from '#gen/tansu/platform/v1/tenant_pb.js';
import {
  DeleteTenantResponseSchema,
  GetTenantResponseSchema,
  ListTenantsResponseSchema,
  ProvisionTenantResponseSchema,
  Tenants,
} from '#gen/tansu/platform/v1/tenants_pb.js';
import { domainError } from '../core/errors.ts';
import { requirePlatformAdmin } from '../identity/authenticate.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import type { Platform } from './platform.ts';
import { deleteTenant, provisionTenant } from './provisioning.ts';
import { assertTenantId } from './tenant-id.ts';
import type { TenantRecord } from './tenant-registry.ts';

function toTenantMessage(record: TenantRecord): Tenant {
  return create(TenantSchema, {
    id: record.id,
    displayName: record.displayName,
    state: record.state === 'active' ? TenantState.ACTIVE : TenantState.PROVISIONING,
    databaseName: record.databaseName,
    createTime: timestampFromDate(record.createdAt),
  });
}

const SELECT_TENANT = 'SELECT id, display_name AS "displayName", state, database_name AS "databaseName", created_at AS "createdAt" FROM tenants';

/** Registers the Tenants service (platform admins only). */
export function tenantsRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(Tenants, {
      async provisionTenant(request, context) {
        const caller = await requirePlatformAdmin(platform, context);
        const provisioned = await provisionTenant(platform.provisioning, { id: request.id, displayName: request.displayName });
        await platform.platformDb.query(
          "INSERT INTO platform_audit (actor, action, target) VALUES ($1, 'tenant.provisioned', $2)",
          [caller.subject, request.id],
        );
        return create(ProvisionTenantResponseSchema, {
          tenant: toTenantMessage(provisioned.tenant),
          adminEmail: provisioned.adminEmail,
          adminPassword: provisioned.adminPassword,
        });
      },

      async getTenant(request, context) {
        await requirePlatformAdmin(platform, context);
        assertTenantId(request.id);
        const { rows } = await platform.platformDb.query<TenantRecord>(`${SELECT_TENANT} WHERE id = $1`, [request.id]);
        if (rows.length === 0) throw domainError('TENANT_NOT_FOUND', `tenant "${request.id}" does not exist`);
        return create(GetTenantResponseSchema, { tenant: toTenantMessage(rows[0]) });
      },

      async listTenants(request, context) {
        await requirePlatformAdmin(platform, context);
        const size = pageSize(request.pageSize);
        const after = decodePageToken(request.pageToken, 'tenants');
        const { rows } = await platform.platformDb.query<TenantRecord>(
          `${SELECT_TENANT} WHERE id > $1 ORDER BY id LIMIT $2`,
          [after ?? '', size + 1],
        );
        const page = rows.slice(0, size);
        return create(ListTenantsResponseSchema, {
          tenants: page.map(toTenantMessage),
          nextPageToken: rows.length > size ? encodePageToken('tenants', page[page.length - 1].id) : '',
        });
      },

      async deleteTenant(request, context) {
        const caller = await requirePlatformAdmin(platform, context);
        await deleteTenant(platform.provisioning, request.id);
        await platform.platformDb.query(
          "INSERT INTO platform_audit (actor, action, target) VALUES ($1, 'tenant.deleted', $2)",
          [caller.subject, request.id],
        );
        return create(DeleteTenantResponseSchema, {});
      },
    });
}

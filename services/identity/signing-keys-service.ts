import { create } from '@bufbuild/protobuf';
import { timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  ListSigningKeysResponseSchema,
  RotateSigningKeyResponseSchema,
  SigningKeys,
  SigningKeySchema,
  SigningKeyState,
  type SigningKey,
} from '#gen/tansu/identity/v1/signing_keys_pb.js';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { recordAudit } from './audit.ts';
import { requestedTenant, requireTenantCaller } from './authenticate.ts';

interface KeyRow {
  kid: string;
  created_at: Date;
  retired_at: Date | null;
}

/** Reads the public facts of a tenant's keys, newest first. */
async function listKeys(tenant: TenantContext): Promise<SigningKey[]> {
  const settings = await tenant.settings();
  const graceMs = settings.keyRotationGraceDays * 86_400_000;
  const { rows } = await tenant.db.query<KeyRow>(
    'SELECT kid, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, kid',
  );
  const now = Date.now();
  return rows.map((row) => {
    const expires = row.retired_at ? new Date(row.retired_at.getTime() + graceMs) : undefined;
    let state: SigningKeyState = SigningKeyState.ACTIVE;
    if (expires) state = expires.getTime() > now ? SigningKeyState.RETIRING : SigningKeyState.RETIRED;
    return create(SigningKeySchema, {
      kid: row.kid,
      state,
      createTime: timestampFromDate(row.created_at),
      retireTime: row.retired_at ? timestampFromDate(row.retired_at) : undefined,
      expireTime: expires ? timestampFromDate(expires) : undefined,
    });
  });
}

/** Registers the SigningKeys service (tenant admins of the tenant and platform admins). */
export function signingKeysRoutes(platform: Platform) {
  async function tenantFor(field: string, context: HandlerContext) {
    const tenantId = requestedTenant(field, context.requestHeader);
    // Checked before the lookup, so a foreign token learns nothing about the tenant.
    const caller = await requireTenantCaller(platform, context, tenantId, { role: 'TenantAdmin', allowPlatformAdmin: true });
    return { caller, tenant: await platform.tenants.get(tenantId) };
  }

  return (router: ConnectRouter) =>
    router.service(SigningKeys, {
      async listSigningKeys(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        return create(ListSigningKeysResponseSchema, { keys: await listKeys(tenant) });
      },

      async rotateSigningKey(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        const { rows } = await tenant.db.query<{ kid: string }>(
          'SELECT kid FROM signing_keys WHERE retired_at IS NULL ORDER BY created_at DESC LIMIT 1',
        );
        const retiredKid = rows[0]?.kid ?? '';
        const kid = await tenant.keys.rotate();
        await recordAudit(tenant.db, caller, {
          action: 'signing_key.rotated',
          target: kid,
          details: { retiredKid, trigger: 'request' },
        });
        platform.logger.info({ tenant: tenant.id, kid, retiredKid }, 'signing key rotated on request');
        const key = (await listKeys(tenant)).find((candidate) => candidate.kid === kid);
        return create(RotateSigningKeyResponseSchema, { key, retiredKid });
      },
    });
}

import type { HandlerContext } from '@connectrpc/connect';

import type { Database } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { requestedTenant, requireTenantCaller, type Caller } from './authenticate.ts';

/** Role that may administer a tenant. */
export const TENANT_ADMIN_ROLE = 'TenantAdmin';

/**
 * Resolves the tenant of an admin RPC and checks the caller: a TenantAdmin token of that very
 * tenant. The token is checked before the tenant is looked up, so a token of another tenant
 * gets PERMISSION_DENIED whether or not the tenant or the resource exists.
 */
export async function requireTenantAdmin(
  platform: Platform,
  context: HandlerContext,
  tenantField: string,
): Promise<{ caller: Caller; tenant: TenantContext }> {
  const tenantId = requestedTenant(tenantField, context.requestHeader);
  const caller = await requireTenantCaller(platform, context, tenantId, { role: TENANT_ADMIN_ROLE });
  const tenant = await platform.tenants.get(tenantId);
  return { caller, tenant };
}

/**
 * Appends an admin action to the tenant's `audit_log`. `details` says what changed and must
 * never hold a secret.
 */
export async function recordAudit(
  db: Pick<Database, 'query'>,
  entry: { actor: string; action: string; target: string; details?: Record<string, unknown> },
): Promise<void> {
  await db.query('INSERT INTO audit_log (actor, action, target, details) VALUES ($1, $2, $3, $4)', [
    entry.actor,
    entry.action,
    entry.target,
    JSON.stringify(entry.details ?? {}),
  ]);
}

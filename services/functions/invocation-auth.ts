import { domainError } from '../core/errors.ts';
import { authenticate, type Caller } from '../identity/authenticate.ts';
import type { Platform } from '../platform/platform.ts';
import { assertTenantId } from '../platform/tenant-id.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';

/** Scope a tenant token needs to call the tenant's private functions. */
export const EXECUTE_SCOPE = 'functions.execute';

/**
 * Decides whether a request may call a tenant function and returns the tenant. A token of the
 * tenant with the `functions.execute` scope, or a platform admin token, may call every
 * function. Without either, only a public function may be called. A token of another tenant is
 * rejected with PERMISSION_DENIED before the tenant is looked up, even for a public function.
 * A caller without rights gets the same UNAUTHENTICATED or PERMISSION_DENIED whether or not the
 * function exists, so private function names do not leak.
 */
export async function authorizeInvocation(
  platform: Platform,
  headers: Headers,
  tenantId: string,
  functionName: string,
): Promise<{ tenant: TenantContext; caller: Caller | undefined }> {
  // A malformed or reserved id is INVALID_ARGUMENT for every caller, as on the RPCs.
  assertTenantId(tenantId, 'tenant');
  const caller = await authenticate(platform, headers);
  if (caller && !caller.isPlatformAdmin && caller.tenant !== tenantId) {
    throw domainError('PERMISSION_DENIED', `the access token belongs to another tenant than "${tenantId}"`);
  }
  const tenant = await platform.tenants.get(tenantId);
  if (caller && (caller.isPlatformAdmin || caller.scopes.includes(EXECUTE_SCOPE))) return { tenant, caller };

  const entry = await platform.functions.versions.get(tenant.id, tenant.db, functionName);
  if (entry?.public) return { tenant, caller };
  if (caller) throw domainError('PERMISSION_DENIED', `calling this function needs the ${EXECUTE_SCOPE} scope`);
  throw domainError('UNAUTHENTICATED', `calling this function needs an access token with the ${EXECUTE_SCOPE} scope`);
}

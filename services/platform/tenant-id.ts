import { domainError } from '../core/errors.ts';

/**
 * Words that cannot be tenant ids because they name parts of the URL space
 * (`/functions/api/...`, `/identity/admin/...`, `/identity/platform/...`) or would confuse users:
 * `tansu` would give its admin the platform admin's default email, `admin@tansu.local`.
 */
export const RESERVED_TENANT_IDS: ReadonlySet<string> = new Set([
  'admin',
  'api',
  'connect',
  'dashboard',
  'data',
  'functions',
  'health',
  'identity',
  'metrics',
  'platform',
  'postgres',
  'static',
  'system',
  'tansu',
  'template',
  'template0',
  'template1',
  'well-known',
]);

const TENANT_ID_PATTERN = /^[a-z0-9][a-z0-9-]{1,38}[a-z0-9]$/;

/**
 * Rejects a malformed or reserved tenant id with INVALID_ARGUMENT before it reaches SQL or a
 * database name. Valid ids are 3 to 40 lowercase letters, digits and hyphens, neither starting
 * nor ending with a hyphen.
 */
export function assertTenantId(id: string, field = 'id'): void {
  if (!TENANT_ID_PATTERN.test(id)) {
    throw domainError(
      'INVALID_TENANT_ID',
      `${field} "${id.slice(0, 64)}" is not a valid tenant id: use 3 to 40 lowercase letters, digits and hyphens, not starting or ending with a hyphen`,
      { metadata: { field } },
    );
  }
  if (RESERVED_TENANT_IDS.has(id)) {
    throw domainError('INVALID_TENANT_ID', `${field} "${id}" is reserved; choose another tenant id`, {
      metadata: { field },
    });
  }
}

/** Name of a tenant's database; hyphens become underscores, which ids cannot contain. */
export function tenantDatabaseName(prefix: string, id: string): string {
  return `${prefix}tenant_${id.replaceAll('-', '_')}`;
}

/** Name of the migrated template every tenant database is created from. */
export function templateDatabaseName(prefix: string): string {
  return `${prefix}tenant_template`;
}

/** Name of the platform database. */
export function platformDatabaseName(prefix: string): string {
  return `${prefix}platform`;
}

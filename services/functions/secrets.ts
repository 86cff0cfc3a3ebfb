import type { SecretBox } from '../core/secret-box.ts';
import { invalidArgument } from '../core/errors.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';

/** Secret names, as the `secrets` table checks them. */
export const SECRET_NAME_PATTERN = /^[A-Za-z_][A-Za-z0-9_]{0,127}$/;

/** Largest secret value, in UTF-8 bytes. */
export const MAX_SECRET_BYTES = 64 * 1024;

/** Rejects a malformed secret name with INVALID_ARGUMENT on `field`. */
export function assertSecretName(name: string, field = 'name'): void {
  if (!SECRET_NAME_PATTERN.test(name)) {
    throw invalidArgument(
      field,
      `${field} "${name.slice(0, 64)}" is not a valid secret name: use 1 to 128 letters, digits and underscores, not starting with a digit`,
    );
  }
}

// Binds a sealed value to its tenant and name, so a value copied to another row or another
// tenant's database fails to decrypt.
function associatedData(tenant: string, name: string): string {
  return `tenant:${tenant}:secret:${name}`;
}

/** Encrypts and stores a secret, replacing any earlier value. */
export async function writeSecret(secretBox: SecretBox, tenant: TenantContext, name: string, value: string): Promise<void> {
  const sealed = secretBox.encrypt(value, associatedData(tenant.id, name));
  await tenant.db.query(
    `INSERT INTO secrets (name, value_encrypted) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET value_encrypted = EXCLUDED.value_encrypted, updated_at = now()`,
    [name, sealed],
  );
}

/** Reads and decrypts a secret of the tenant; null when it is not set or the name is malformed. */
export async function readSecret(secretBox: SecretBox, tenant: TenantContext, name: string): Promise<string | null> {
  if (!SECRET_NAME_PATTERN.test(name)) return null;
  const { rows } = await tenant.db.query<{ value_encrypted: string }>(
    'SELECT value_encrypted FROM secrets WHERE name = $1',
    [name],
  );
  const row = rows[0];
  return row ? secretBox.decrypt(row.value_encrypted, associatedData(tenant.id, name)) : null;
}

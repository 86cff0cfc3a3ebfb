import type { SecretBox } from '../../core/secret-box.ts';
import type { Database } from '../../db/pool-handle.ts';
import type { TenantContext } from '../../platform/tenant-registry.ts';
import type { ProviderConfig, ProviderKind } from './providers.ts';

/** A row of the tenant's `external_providers` table. */
export interface ProviderRow {
  provider: ProviderKind;
  client_id: string;
  client_secret_encrypted: string;
  settings: { issuer?: string; webBaseUrl?: string; apiBaseUrl?: string };
  enabled: boolean;
  status: string;
  updated_at: Date;
}

/** Associated data that binds a sealed provider secret to its tenant and provider. */
export function providerSecretAssociatedData(tenantId: string, kind: string): string {
  return `tenant:${tenantId}:oauth-provider:${kind}`;
}

/** Reads one provider row; undefined when the tenant has not configured it. */
export async function findProvider(db: Pick<Database, 'query'>, kind: string): Promise<ProviderRow | undefined> {
  const { rows } = await db.query<ProviderRow>('SELECT * FROM external_providers WHERE provider = $1', [kind]);
  return rows[0];
}

/**
 * Decrypts a row into the configuration the provider code uses. `allowPrivateUrls` is the
 * server's TANSU_ALLOW_PRIVATE_PROVIDER_URLS.
 */
export function providerConfig(
  tenant: TenantContext,
  secretBox: SecretBox,
  row: ProviderRow,
  allowPrivateUrls: boolean,
): ProviderConfig {
  return {
    kind: row.provider,
    clientId: row.client_id,
    clientSecret: secretBox.decrypt(row.client_secret_encrypted, providerSecretAssociatedData(tenant.id, row.provider)),
    issuer: row.settings.issuer,
    webBaseUrl: row.settings.webBaseUrl,
    apiBaseUrl: row.settings.apiBaseUrl,
    allowPrivateUrls,
  };
}

/** The redirect (callback) URL of a tenant's provider, to enter in the provider's console. */
export function callbackUrl(publicBaseUrl: string, tenantId: string, kind: string): string {
  return `${publicBaseUrl}/identity/api/${tenantId}/auth/callback/${kind}`;
}

/** Shows only the last four characters of a secret. */
export function maskSecret(secret: string): string {
  return secret.length <= 4 ? '*'.repeat(secret.length) : `${'*'.repeat(Math.min(secret.length - 4, 12))}${secret.slice(-4)}`;
}

import type pg from 'pg';

/** Password rules of a tenant. */
export interface PasswordPolicy {
  minLength: number;
  requireUppercase: boolean;
  requireLowercase: boolean;
  requireDigit: boolean;
  requireSymbol: boolean;
  /** Reject passwords from the list of commonly used ones. */
  rejectCommon: boolean;
}

/** Identity settings in force for one tenant. */
export interface IdentitySettings {
  accessTokenLifetimeSeconds: number;
  idTokenLifetimeSeconds: number;
  refreshTokenLifetimeSeconds: number;
  /** A repeated refresh of the same token within this window returns the same successor. */
  refreshReuseGraceSeconds: number;
  keyRotationIntervalDays: number;
  keyRotationGraceDays: number;
  passwordPolicy: PasswordPolicy;
  /** Failed sign-ins in a row that lock an account. */
  lockoutMaxAttempts: number;
  lockoutMinutes: number;
  /** Signups one client IP may make per hour in one tenant. */
  signupsPerIpPerHour: number;
  /** IANA time zone of the tenant, used by schedules. */
  timeZone: string;
  /** Largest wall-time limit a function of the tenant may have, in milliseconds. */
  functionTimeoutMs: number;
  /** Largest heap limit a function of the tenant may have, in MiB. */
  functionMemoryMb: number;
  /** Function executions the tenant may start per minute, over every trigger. */
  functionExecutionsPerMinute: number;
}

/** Built-in defaults, used where neither the platform nor the tenant set a value. */
export const DEFAULT_IDENTITY_SETTINGS: IdentitySettings = {
  accessTokenLifetimeSeconds: 3600,
  idTokenLifetimeSeconds: 3600,
  refreshTokenLifetimeSeconds: 14 * 24 * 3600,
  refreshReuseGraceSeconds: 5,
  keyRotationIntervalDays: 30,
  keyRotationGraceDays: 7,
  passwordPolicy: {
    minLength: 8,
    requireUppercase: false,
    requireLowercase: false,
    requireDigit: false,
    requireSymbol: false,
    rejectCommon: true,
  },
  lockoutMaxAttempts: 5,
  lockoutMinutes: 15,
  signupsPerIpPerHour: 10,
  timeZone: 'UTC',
  functionTimeoutMs: 30_000,
  functionMemoryMb: 128,
  functionExecutionsPerMinute: 100,
};

/** Where an effective setting came from. */
export type SettingSource = 'default' | 'platform' | 'tenant';

/** Reads the `name → value` rows of a settings table. */
async function readSettingRows(db: Pick<pg.Pool, 'query'>, table: 'platform_settings' | 'identity_settings') {
  const { rows } = await db.query<{ name: string; value: unknown }>(`SELECT name, value FROM ${table}`);
  return new Map(rows.map((row) => [row.name, row.value]));
}

/**
 * Computes a tenant's effective identity settings: the tenant's override of a setting wins
 * over the platform's, which wins over the built-in default. Also returns each setting's source.
 */
export async function loadIdentitySettings(
  platformDb: Pick<pg.Pool, 'query'>,
  tenantDb: Pick<pg.Pool, 'query'> | null,
): Promise<{ settings: IdentitySettings; sources: Record<keyof IdentitySettings, SettingSource> }> {
  const platform = await readSettingRows(platformDb, 'platform_settings');
  const tenant = tenantDb ? await readSettingRows(tenantDb, 'identity_settings') : new Map<string, unknown>();
  const settings = { ...DEFAULT_IDENTITY_SETTINGS } as Record<string, unknown>;
  const sources = {} as Record<string, SettingSource>;
  for (const name of Object.keys(DEFAULT_IDENTITY_SETTINGS)) {
    sources[name] = 'default';
    if (platform.has(name)) {
      settings[name] = platform.get(name);
      sources[name] = 'platform';
    }
    if (tenant.has(name)) {
      settings[name] = tenant.get(name);
      sources[name] = 'tenant';
    }
  }
  return {
    settings: settings as unknown as IdentitySettings,
    sources: sources as Record<keyof IdentitySettings, SettingSource>,
  };
}

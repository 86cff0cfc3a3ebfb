import type pg from 'pg';

import { invalidArgument } from '../core/errors.ts';
import { isIanaTimeZone } from '../core/time-zone.ts';
import { DEFAULT_PASSWORD_POLICY, type PasswordPolicy as PasswordRules } from './passwords.ts';

/** Password rules of a tenant: the checks of passwords.ts plus the reuse history. */
export interface PasswordPolicy extends PasswordRules {
  /** How many previous passwords of a user may not be chosen again. */
  history: number;
}

/** Multi-factor authentication defaults. */
export interface MfaSettings {
  /** Whether users must set up a second factor (stored; sign-in does not enforce it yet). */
  required: boolean;
}

/** Identity settings in force for one tenant. */
export interface IdentitySettings {
  accessTokenLifetimeSeconds: number;
  idTokenLifetimeSeconds: number;
  refreshTokenLifetimeSeconds: number;
  /** A repeated refresh of the same token within this window returns the same successor. */
  refreshReuseGraceSeconds: number;
  /** May be fractional: the API takes whole seconds and divides them by 86,400. */
  keyRotationIntervalDays: number;
  /** May be fractional, like keyRotationIntervalDays. */
  keyRotationGraceDays: number;
  passwordPolicy: PasswordPolicy;
  /** Maximum life of a refresh family, however often it is refreshed. */
  sessionAbsoluteTimeoutSeconds: number;
  /** A refresh family ends when it is not refreshed for this long. */
  sessionIdleTimeoutSeconds: number;
  mfa: MfaSettings;
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
  passwordPolicy: { ...DEFAULT_PASSWORD_POLICY, history: 0 },
  sessionAbsoluteTimeoutSeconds: 14 * 24 * 3600,
  sessionIdleTimeoutSeconds: 14 * 24 * 3600,
  mfa: { required: false },
  lockoutMaxAttempts: 5,
  lockoutMinutes: 15,
  signupsPerIpPerHour: 10,
  timeZone: 'UTC',
  functionTimeoutMs: 30_000,
  functionMemoryMb: 128,
  functionExecutionsPerMinute: 100,
};

/** Source of an effective setting value. */
export type SettingSource = 'default' | 'platform' | 'tenant';

/** Type and allowed range of a setting, which decide its API field and its validation. */
export type SettingKind =
  /** A google.protobuf.Duration in the API; stored in `unitSeconds` units. */
  | { type: 'duration'; unitSeconds: number; minSeconds: number; maxSeconds: number; wholeUnits?: boolean }
  | { type: 'integer'; min: number; max: number }
  | { type: 'boolean' }
  | { type: 'timeZone' };

/** One leaf setting: its API field path, its key in IdentitySettings and its rules. */
export interface SettingDefinition {
  /** Field path in the API (snake_case), such as `password_policy.min_length`. */
  path: string;
  /** Dotted key in IdentitySettings, such as `passwordPolicy.minLength`; also the row name. */
  key: string;
  kind: SettingKind;
  /** Only tenants may set it; the platform level rejects it. */
  tenantOnly?: boolean;
  /** The platform's value (or the default) is the largest value a tenant may set or get. */
  platformCeiling?: boolean;
}

const MINUTE = 60;
const HOUR = 3600;
const DAY = 86_400;

/** Every setting, in API field order. */
export const SETTING_DEFINITIONS: readonly SettingDefinition[] = [
  { path: 'access_token_lifetime', key: 'accessTokenLifetimeSeconds', kind: seconds(MINUTE, DAY) },
  { path: 'id_token_lifetime', key: 'idTokenLifetimeSeconds', kind: seconds(MINUTE, DAY) },
  { path: 'refresh_token_lifetime', key: 'refreshTokenLifetimeSeconds', kind: seconds(5 * MINUTE, 365 * DAY) },
  { path: 'refresh_reuse_grace', key: 'refreshReuseGraceSeconds', kind: seconds(0, 10) },
  {
    path: 'key_rotation_interval',
    key: 'keyRotationIntervalDays',
    kind: { type: 'duration', unitSeconds: DAY, minSeconds: DAY, maxSeconds: 365 * DAY },
  },
  {
    path: 'key_rotation_grace',
    key: 'keyRotationGraceDays',
    kind: { type: 'duration', unitSeconds: DAY, minSeconds: 0, maxSeconds: 90 * DAY },
  },
  { path: 'password_policy.min_length', key: 'passwordPolicy.minLength', kind: { type: 'integer', min: 6, max: 128 } },
  { path: 'password_policy.require_uppercase', key: 'passwordPolicy.requireUppercase', kind: { type: 'boolean' } },
  { path: 'password_policy.require_lowercase', key: 'passwordPolicy.requireLowercase', kind: { type: 'boolean' } },
  { path: 'password_policy.require_digit', key: 'passwordPolicy.requireDigit', kind: { type: 'boolean' } },
  { path: 'password_policy.require_symbol', key: 'passwordPolicy.requireSymbol', kind: { type: 'boolean' } },
  { path: 'password_policy.reject_common', key: 'passwordPolicy.rejectCommon', kind: { type: 'boolean' } },
  { path: 'password_policy.history', key: 'passwordPolicy.history', kind: { type: 'integer', min: 0, max: 24 } },
  { path: 'session_absolute_timeout', key: 'sessionAbsoluteTimeoutSeconds', kind: seconds(5 * MINUTE, 365 * DAY) },
  { path: 'session_idle_timeout', key: 'sessionIdleTimeoutSeconds', kind: seconds(5 * MINUTE, 365 * DAY) },
  { path: 'mfa.required', key: 'mfa.required', kind: { type: 'boolean' } },
  { path: 'lockout_max_attempts', key: 'lockoutMaxAttempts', kind: { type: 'integer', min: 1, max: 100 } },
  {
    path: 'lockout_duration',
    key: 'lockoutMinutes',
    kind: { type: 'duration', unitSeconds: MINUTE, minSeconds: MINUTE, maxSeconds: DAY, wholeUnits: true },
  },
  { path: 'signups_per_ip_per_hour', key: 'signupsPerIpPerHour', kind: { type: 'integer', min: 1, max: 10_000 } },
  { path: 'time_zone', key: 'timeZone', kind: { type: 'timeZone' }, tenantOnly: true },
  {
    path: 'function_timeout',
    key: 'functionTimeoutMs',
    kind: { type: 'duration', unitSeconds: 0.001, minSeconds: 1, maxSeconds: 300 },
    platformCeiling: true,
  },
  {
    path: 'function_memory_mb',
    key: 'functionMemoryMb',
    kind: { type: 'integer', min: 8, max: 512 },
    platformCeiling: true,
  },
  {
    path: 'function_executions_per_minute',
    key: 'functionExecutionsPerMinute',
    kind: { type: 'integer', min: 1, max: 1_000_000 },
    platformCeiling: true,
  },
];

function seconds(minSeconds: number, maxSeconds: number): SettingKind {
  return { type: 'duration', unitSeconds: 1, minSeconds, maxSeconds };
}

/** Reads the value at a dotted key of a settings object. */
export function settingValue(settings: IdentitySettings, key: string): unknown {
  return key.split('.').reduce<unknown>((object, part) => (object as Record<string, unknown>)?.[part], settings);
}

function assignSettingValue(settings: Record<string, unknown>, key: string, value: unknown): void {
  const parts = key.split('.');
  let object = settings;
  for (const part of parts.slice(0, -1)) {
    object[part] = { ...(object[part] as Record<string, unknown>) };
    object = object[part] as Record<string, unknown>;
  }
  object[parts[parts.length - 1]] = value;
}

function describeSeconds(value: number): string {
  if (value === 0) return '0s';
  if (value % DAY === 0) return `${value / DAY} day${value === DAY ? '' : 's'}`;
  if (value % HOUR === 0) return `${value / HOUR} hour${value === HOUR ? '' : 's'}`;
  if (value % MINUTE === 0) return `${value / MINUTE} minute${value === MINUTE ? '' : 's'}`;
  return `${value} seconds`;
}

/**
 * Checks a setting value given in API units (whole seconds for durations) and returns it in
 * stored units. Throws INVALID_ARGUMENT naming `settings.<path>` and the allowed range.
 */
export function validateSetting(definition: SettingDefinition, value: unknown): number | boolean | string {
  const field = `settings.${definition.path}`;
  const kind = definition.kind;
  switch (kind.type) {
    case 'duration': {
      const range = `from ${describeSeconds(kind.minSeconds)} to ${describeSeconds(kind.maxSeconds)}`;
      if (typeof value !== 'number' || !Number.isInteger(value)) {
        throw invalidArgument(field, `${field} must be a whole number of seconds ${range}`);
      }
      if (value < kind.minSeconds || value > kind.maxSeconds) {
        throw invalidArgument(field, `${field} must be ${range}, got ${value}s`);
      }
      if (kind.wholeUnits && value % kind.unitSeconds !== 0) {
        throw invalidArgument(field, `${field} must be whole minutes ${range}, got ${value}s`);
      }
      // Units below a second (milliseconds) are rounded, so 30 s stores 30000, not 29999.99….
      const stored = value / kind.unitSeconds;
      return kind.unitSeconds < 1 ? Math.round(stored) : stored;
    }
    case 'integer':
      if (typeof value !== 'number' || !Number.isInteger(value) || value < kind.min || value > kind.max) {
        throw invalidArgument(field, `${field} must be a whole number from ${kind.min} to ${kind.max}, got ${String(value)}`);
      }
      return value;
    case 'boolean':
      if (typeof value !== 'boolean') throw invalidArgument(field, `${field} must be true or false`);
      return value;
    case 'timeZone':
      if (typeof value !== 'string' || !isTimeZone(value)) {
        throw invalidArgument(
          field,
          `${field} must be an IANA time zone such as "Europe/Berlin" or "UTC", got "${String(value)}"`,
        );
      }
      return value;
  }
}

/**
 * Checks tenant changes of settings with a platform ceiling against the platform's effective
 * settings. Throws INVALID_ARGUMENT naming `settings.<path>` when a value is above the ceiling.
 */
export function checkPlatformCeilings(changes: SettingChange[], platform: IdentitySettings): void {
  for (const { definition, value } of changes) {
    if (!definition.platformCeiling || typeof value !== 'number') continue;
    const ceiling = settingValue(platform, definition.key) as number;
    if (value <= ceiling) continue;
    const field = `settings.${definition.path}`;
    throw invalidArgument(
      field,
      `${field} must be at most the platform's limit of ${describeStored(definition, ceiling)}, ` +
        `got ${describeStored(definition, value)}; ask the platform admin to raise it`,
    );
  }
}

function describeStored(definition: SettingDefinition, value: number): string {
  const kind = definition.kind;
  if (kind.type !== 'duration') return String(value);
  // Rounded to milliseconds, so 30000 ms at 0.001 s per unit reads as 30 seconds.
  return describeSeconds(Math.round(value * kind.unitSeconds * 1000) / 1000);
}

/** Reports whether `name` is an IANA time zone that this runtime's Intl data contains. */
export function isTimeZone(name: string): boolean {
  return isIanaTimeZone(name);
}

/** Reads the `name → value` rows of a settings table. */
async function readSettingRows(db: Pick<pg.Pool, 'query'>, table: SettingsTable) {
  const { rows } = await db.query<{ name: string; value: unknown }>(`SELECT name, value FROM ${table}`);
  return new Map(rows.map((row) => [row.name, row.value]));
}

/** The platform's settings table or a tenant database's override table. */
export type SettingsTable = 'platform_settings' | 'identity_settings';

/** Effective settings with the source of each leaf, keyed by API field path. */
export interface ResolvedSettings {
  settings: IdentitySettings;
  sources: Record<string, SettingSource>;
}

/**
 * Computes a tenant's effective identity settings: the tenant's override of a setting wins
 * over the platform's, which wins over the built-in default. A setting with a platform
 * ceiling takes the smaller of the tenant's and the platform's value, so lowering the
 * platform's value lowers tenants' too, and its source is the level whose value applies. Also
 * returns each setting's source, keyed by API field path (`password_policy.min_length`). With
 * `tenantDb` null it returns the platform level alone.
 */
export async function loadIdentitySettings(
  platformDb: Pick<pg.Pool, 'query'>,
  tenantDb: Pick<pg.Pool, 'query'> | null,
): Promise<ResolvedSettings> {
  const platform = await readSettingRows(platformDb, 'platform_settings');
  const tenant = tenantDb ? await readSettingRows(tenantDb, 'identity_settings') : new Map<string, unknown>();
  const settings = structuredClone(DEFAULT_IDENTITY_SETTINGS) as unknown as Record<string, unknown>;
  const sources: Record<string, SettingSource> = {};
  for (const definition of SETTING_DEFINITIONS) {
    sources[definition.path] = 'default';
    if (platform.has(definition.key) && !definition.tenantOnly) {
      assignSettingValue(settings, definition.key, platform.get(definition.key));
      sources[definition.path] = 'platform';
    }
    if (tenant.has(definition.key)) {
      const value = tenant.get(definition.key);
      const ceiling = settingValue(settings as unknown as IdentitySettings, definition.key);
      const capped = definition.platformCeiling && typeof value === 'number' && value > (ceiling as number);
      if (!capped) {
        assignSettingValue(settings, definition.key, value);
        sources[definition.path] = 'tenant';
      }
    }
  }
  return { settings: settings as unknown as IdentitySettings, sources };
}

/** One change of a settings update: a new stored value, or undefined to remove the row. */
export interface SettingChange {
  definition: SettingDefinition;
  value: number | boolean | string | undefined;
}

/** Changes made by an update, per field path, for the audit log. */
export type SettingsDiff = Record<string, { from: unknown; to: unknown }>;

/**
 * Writes `changes` to a settings table and returns the stored values before and after each
 * change (null means "not set at this level"). Run it inside the caller's transaction.
 * Unchanged values are left out, so repeating an update yields an empty diff.
 */
export async function writeSettings(
  client: pg.ClientBase,
  table: SettingsTable,
  changes: SettingChange[],
  actor: string,
): Promise<SettingsDiff> {
  const names = changes.map((change) => change.definition.key);
  const { rows } = await client.query<{ name: string; value: unknown }>(
    `SELECT name, value FROM ${table} WHERE name = ANY($1::text[]) FOR UPDATE`,
    [names],
  );
  const before = new Map(rows.map((row) => [row.name, row.value]));
  const diff: SettingsDiff = {};
  for (const { definition, value } of changes) {
    const previous = before.get(definition.key);
    if (previous === value) continue;
    if (value === undefined) {
      await client.query(`DELETE FROM ${table} WHERE name = $1`, [definition.key]);
    } else {
      await client.query(
        `INSERT INTO ${table} (name, value, updated_at, updated_by) VALUES ($1, $2::jsonb, now(), $3)
         ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value, updated_at = now(), updated_by = EXCLUDED.updated_by`,
        [definition.key, JSON.stringify(value), actor],
      );
    }
    diff[definition.path] = { from: previous ?? null, to: value ?? null };
  }
  return diff;
}

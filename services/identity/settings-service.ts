import { create } from '@bufbuild/protobuf';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  GetPlatformSettingsResponseSchema,
  GetTenantSettingsResponseSchema,
  IdentitySettingsSchema,
  SettingSource,
  Settings,
  UpdatePlatformSettingsResponseSchema,
  UpdateTenantSettingsResponseSchema,
  type IdentitySettings as IdentitySettingsMessage,
} from '#gen/tansu/identity/v1/settings_pb.js';
import { invalidArgument } from '../core/errors.ts';
import { inTransaction, poolHandle } from '../db/pool-handle.ts';
import type { Platform } from '../platform/platform.ts';
import { recordAudit, recordPlatformAudit } from './audit.ts';
import { requestedTenant, requirePlatformAdmin, requireTenantCaller } from './authenticate.ts';
import {
  checkPlatformCeilings,
  loadIdentitySettings,
  SETTING_DEFINITIONS,
  settingValue,
  validateSetting,
  writeSettings,
  type ResolvedSettings,
  type SettingChange,
  type SettingDefinition,
  type SettingSource as Source,
} from './settings.ts';

const SOURCE_ENUM: Record<Source, SettingSource> = {
  default: SettingSource.DEFAULT,
  platform: SettingSource.PLATFORM,
  tenant: SettingSource.TENANT,
};

/** Converts a snake_case path segment to the camelCase property name of protobuf-es. */
function propertyName(segment: string): string {
  return segment.replace(/_([a-z])/g, (_match, letter: string) => letter.toUpperCase());
}

/** Reads a leaf of the API message in API units: seconds for durations, undefined when unset. */
function readLeaf(message: IdentitySettingsMessage, definition: SettingDefinition): unknown {
  const value = definition.path
    .split('.')
    .reduce<unknown>((object, segment) => (object as Record<string, unknown> | undefined)?.[propertyName(segment)], message);
  if (value === undefined || definition.kind.type !== 'duration') return value;

  const duration = value as { seconds: bigint; nanos: number };
  if (duration.nanos !== 0) {
    const field = `settings.${definition.path}`;
    throw invalidArgument(field, `${field} must be whole seconds, without a fraction`);
  }
  return Number(duration.seconds);
}

/** Builds the API message from effective settings; the platform level leaves out tenant-only fields. */
function toMessage(resolved: ResolvedSettings, level: 'platform' | 'tenant'): IdentitySettingsMessage {
  const message: Record<string, unknown> = {};
  for (const definition of SETTING_DEFINITIONS) {
    if (level === 'platform' && definition.tenantOnly) continue;
    let value = settingValue(resolved.settings, definition.key);
    if (definition.kind.type === 'duration') {
      value = { seconds: BigInt(Math.round((value as number) * definition.kind.unitSeconds)), nanos: 0 };
    }
    const segments = definition.path.split('.').map(propertyName);
    let object = message;
    for (const segment of segments.slice(0, -1)) {
      object[segment] ??= {};
      object = object[segment] as Record<string, unknown>;
    }
    object[segments[segments.length - 1]] = value;
  }
  return create(IdentitySettingsSchema, message as never);
}

function toSources(resolved: ResolvedSettings, level: 'platform' | 'tenant'): Record<string, SettingSource> {
  const sources: Record<string, SettingSource> = {};
  for (const definition of SETTING_DEFINITIONS) {
    if (level === 'platform' && definition.tenantOnly) continue;
    sources[definition.path] = SOURCE_ENUM[resolved.sources[definition.path]];
  }
  return sources;
}

/**
 * Turns an update request into validated changes. Mask paths may name a leaf or a group
 * (`password_policy`, `mfa`). A named leaf that is unset in `settings` becomes a removal. An
 * empty mask means every leaf that is set.
 */
function changesOf(
  settings: IdentitySettingsMessage | undefined,
  paths: string[],
  level: 'platform' | 'tenant',
): SettingChange[] {
  const message = settings ?? create(IdentitySettingsSchema);
  let selected: SettingDefinition[];
  if (paths.length === 0) {
    selected = SETTING_DEFINITIONS.filter((definition) => readLeaf(message, definition) !== undefined);
    if (selected.length === 0) {
      throw invalidArgument('update_mask', 'update_mask is empty and settings sets no field, so there is nothing to change');
    }
  } else {
    const chosen = new Set<SettingDefinition>();
    for (const path of paths) {
      const matches = SETTING_DEFINITIONS.filter(
        (definition) => definition.path === path || definition.path.startsWith(`${path}.`),
      );
      if (matches.length === 0) {
        throw invalidArgument(
          'update_mask',
          `update_mask names "${path}", which is not a setting; use field paths such as access_token_lifetime or password_policy.min_length`,
        );
      }
      for (const match of matches) chosen.add(match);
    }
    selected = [...chosen];
  }

  return selected.map((definition) => {
    if (level === 'platform' && definition.tenantOnly) {
      const field = `settings.${definition.path}`;
      throw invalidArgument(field, `${field} is a tenant setting; set it with UpdateTenantSettings`);
    }
    const value = readLeaf(message, definition);
    return { definition, value: value === undefined ? undefined : validateSetting(definition, value) };
  });
}

/** Registers the Settings service. */
export function settingsRoutes(platform: Platform) {
  const platformDb = poolHandle(() => platform.platformDb);

  async function tenantFor(field: string, context: HandlerContext) {
    const tenantId = requestedTenant(field, context.requestHeader);
    // Checked before the lookup, so a foreign token learns nothing about the tenant.
    const caller = await requireTenantCaller(platform, context, tenantId, { role: 'TenantAdmin', allowPlatformAdmin: true });
    return { caller, tenant: await platform.tenants.get(tenantId) };
  }

  return (router: ConnectRouter) =>
    router.service(Settings, {
      async getPlatformSettings(_request, context) {
        await requirePlatformAdmin(platform, context);
        const resolved = await loadIdentitySettings(platform.platformDb, null);
        return create(GetPlatformSettingsResponseSchema, {
          settings: toMessage(resolved, 'platform'),
          sources: toSources(resolved, 'platform'),
        });
      },

      async updatePlatformSettings(request, context) {
        const caller = await requirePlatformAdmin(platform, context);
        const changes = changesOf(request.settings, request.updateMask?.paths ?? [], 'platform');
        await inTransaction(platformDb, async (client) => {
          const diff = await writeSettings(client, 'platform_settings', changes, caller.subject);
          await recordPlatformAudit(client, caller, { action: 'settings.updated', details: { changes: diff } });
        });
        platform.tenants.invalidateAllSettings();
        platform.logger.info({ fields: changes.map((change) => change.definition.path) }, 'platform settings updated');
        const resolved = await loadIdentitySettings(platform.platformDb, null);
        return create(UpdatePlatformSettingsResponseSchema, {
          settings: toMessage(resolved, 'platform'),
          sources: toSources(resolved, 'platform'),
        });
      },

      async getTenantSettings(request, context) {
        const { tenant } = await tenantFor(request.tenant, context);
        const resolved = await loadIdentitySettings(platform.platformDb, tenant.db);
        return create(GetTenantSettingsResponseSchema, {
          settings: toMessage(resolved, 'tenant'),
          sources: toSources(resolved, 'tenant'),
        });
      },

      async updateTenantSettings(request, context) {
        const { caller, tenant } = await tenantFor(request.tenant, context);
        const changes = changesOf(request.settings, request.updateMask?.paths ?? [], 'tenant');
        checkPlatformCeilings(changes, (await loadIdentitySettings(platform.platformDb, null)).settings);
        await inTransaction(tenant.db, async (client) => {
          const diff = await writeSettings(client, 'identity_settings', changes, caller.subject);
          await recordAudit(client, caller, { action: 'settings.updated', details: { changes: diff } });
        });
        tenant.invalidateSettings();
        platform.logger.info(
          { tenant: tenant.id, fields: changes.map((change) => change.definition.path) },
          'tenant settings updated',
        );
        const resolved = await loadIdentitySettings(platform.platformDb, tenant.db);
        return create(UpdateTenantSettingsResponseSchema, {
          settings: toMessage(resolved, 'tenant'),
          sources: toSources(resolved, 'tenant'),
        });
      },
    });
}

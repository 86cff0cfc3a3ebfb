import { create, type JsonObject } from '@bufbuild/protobuf';
import { timestampDate, timestampFromDate } from '@bufbuild/protobuf/wkt';
import type { ConnectRouter, HandlerContext } from '@connectrpc/connect';

import {
  CreateTriggerResponseSchema,
  DeadLetterSchema,
  DeleteTriggerResponseSchema,
  FireTimeSchema,
  ListDeadLettersResponseSchema,
  ListTriggersResponseSchema,
  PreviewScheduleResponseSchema,
  ReplayDeadLettersResponseSchema,
  TriggerSchema,
  Triggers,
  UpdateTriggerResponseSchema,
  type DeadLetter,
  type Trigger,
} from '#gen/tansu/functions/v1/triggers_pb.js';
import { domainError } from '../core/errors.ts';
import { decodePageToken, encodePageToken, pageSize } from '../core/pagination.ts';
import type { Database } from '../db/pool-handle.ts';
import { requireTenantCaller } from '../identity/authenticate.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import { nextFireTimes, parseCron, validateTimeZone } from './cron.ts';
import { replayDeadLetters } from './dispatcher.ts';
import { parseEventPattern } from './event-pattern.ts';

const uuidPattern = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const MAX_PREVIEW = 100;
const DEFAULT_PREVIEW = 5;

interface TriggerRow {
  id: string;
  function_name: string;
  kind: 'event' | 'schedule';
  event_pattern: string | null;
  cron: string | null;
  time_zone: string | null;
  enabled: boolean;
  max_attempts: number;
  backoff_seconds: number;
  last_invoked_at: Date | null;
  created_at: Date;
  updated_at: Date;
}

interface DeadLetterRow {
  id: string;
  delivery_id: string;
  event_id: string;
  trigger_id: string;
  function_name: string;
  event_type: string;
  event_payload: JsonObject;
  attempts: number;
  last_error: string | null;
  created_at: Date;
  failed_at: Date;
  replayed_at: Date | null;
  replay_count: number;
  cursor_time: string;
}

const TRIGGER_COLUMNS = `id, function_name, kind, event_pattern, cron, time_zone, enabled, max_attempts,
  backoff_seconds, last_invoked_at, created_at, updated_at`;

function toTriggerMessage(row: TriggerRow): Trigger {
  return create(TriggerSchema, {
    id: row.id,
    functionName: row.function_name,
    eventPattern: row.event_pattern ?? '',
    cron: row.cron ?? '',
    timeZone: row.time_zone ?? '',
    enabled: row.enabled,
    maxAttempts: row.max_attempts,
    backoffSeconds: row.backoff_seconds,
    lastInvokeTime: row.last_invoked_at ? timestampFromDate(row.last_invoked_at) : undefined,
    createTime: timestampFromDate(row.created_at),
    updateTime: timestampFromDate(row.updated_at),
  });
}

function toDeadLetterMessage(row: DeadLetterRow): DeadLetter {
  const payload = row.event_payload;
  return create(DeadLetterSchema, {
    id: row.id,
    deliveryId: row.delivery_id,
    eventId: row.event_id,
    triggerId: row.trigger_id,
    functionName: row.function_name,
    eventType: row.event_type,
    eventPayload: payload !== null && typeof payload === 'object' && !Array.isArray(payload) ? payload : { value: payload },
    attempts: row.attempts,
    lastError: row.last_error ?? '',
    createTime: timestampFromDate(row.created_at),
    failTime: timestampFromDate(row.failed_at),
    replayTime: row.replayed_at ? timestampFromDate(row.replayed_at) : undefined,
    replayCount: row.replay_count,
  });
}

function checkRange(field: string, value: number, min: number, max: number): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw domainError('INVALID_ARGUMENT', `${field} must be an integer from ${min} to ${max}, got ${value}`, {
      metadata: { field },
    });
  }
  return value;
}

/** Parses the cron expression and time zone together, so an expression is checked in its zone. */
function checkSchedule(cron: string, timeZone: string): { cron: string; timeZone: string } {
  const schedule = parseCron(cron);
  const zone = validateTimeZone(timeZone);
  return { cron: schedule.expression, timeZone: zone };
}

function checkPattern(pattern: string): string {
  parseEventPattern(pattern);
  return pattern;
}

/** Formats `instant` as local time in `timeZone`, ISO 8601 with the zone's offset. */
export function localIsoTime(instant: Date, timeZone: string): string {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: '2-digit',
      day: '2-digit',
      hour: '2-digit',
      minute: '2-digit',
      second: '2-digit',
    })
      .formatToParts(instant)
      .map((part) => [part.type, part.value]),
  );
  const localAsUtc = Date.UTC(+parts.year, +parts.month - 1, +parts.day, +parts.hour, +parts.minute, +parts.second);
  const offsetMinutes = Math.round((localAsUtc - Math.floor(instant.getTime() / 1000) * 1000) / 60_000);
  const sign = offsetMinutes < 0 ? '-' : '+';
  const hours = String(Math.floor(Math.abs(offsetMinutes) / 60)).padStart(2, '0');
  const minutes = String(Math.abs(offsetMinutes) % 60).padStart(2, '0');
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}:${parts.second}${sign}${hours}:${minutes}`;
}

async function requireFunction(db: Database, name: string): Promise<void> {
  const { rowCount } = await db.query('SELECT 1 FROM functions WHERE name = $1', [name]);
  if (rowCount === 0) {
    throw domainError('NOT_FOUND', `function "${name}" does not exist`, { metadata: { function: name } });
  }
}

function triggerNotFound(functionName: string, id: string): Error {
  return domainError('NOT_FOUND', `trigger "${id}" of function "${functionName}" does not exist`, {
    metadata: { function: functionName, id },
  });
}

/** Checks the caller (TenantAdmin of the tenant, or a platform admin) before the tenant. */
async function open(platform: Platform, context: HandlerContext, tenantId: string): Promise<TenantContext> {
  await requireTenantCaller(platform, context, tenantId, { role: 'TenantAdmin', allowPlatformAdmin: true });
  return platform.tenants.get(tenantId);
}

/** Registers the Triggers service: triggers, schedule previews and dead letters. */
export function triggersRoutes(platform: Platform) {
  return (router: ConnectRouter) =>
    router.service(Triggers, {
      async createTrigger(request, context) {
        const tenant = await open(platform, context, request.tenant);
        const isEvent = request.eventPattern !== '';
        const isSchedule = request.cron !== '';
        if (isEvent === isSchedule) {
          throw domainError('INVALID_ARGUMENT', 'set exactly one of event_pattern and cron', {
            metadata: { field: 'event_pattern' },
          });
        }
        const maxAttempts = request.maxAttempts === 0 ? 4 : checkRange('max_attempts', request.maxAttempts, 1, 20);
        const backoff = request.backoffSeconds === 0 ? 1 : checkRange('backoff_seconds', request.backoffSeconds, 1, 3600);
        let values: { pattern: string | null; cron: string | null; timeZone: string | null };
        if (isEvent) {
          if (request.timeZone !== '') {
            throw domainError('INVALID_ARGUMENT', 'time_zone applies to schedule triggers only', { metadata: { field: 'time_zone' } });
          }
          values = { pattern: checkPattern(request.eventPattern), cron: null, timeZone: null };
        } else {
          const zone = request.timeZone || (await tenant.settings()).timeZone || 'UTC';
          const checked = checkSchedule(request.cron, zone);
          values = { pattern: null, cron: checked.cron, timeZone: checked.timeZone };
        }
        await requireFunction(tenant.db, request.functionName);
        const { rows } = await tenant.db.query<TriggerRow>(
          `INSERT INTO triggers (function_name, kind, event_pattern, cron, time_zone, max_attempts, backoff_seconds)
           VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${TRIGGER_COLUMNS}`,
          [request.functionName, isEvent ? 'event' : 'schedule', values.pattern, values.cron, values.timeZone, maxAttempts, backoff],
        );
        return create(CreateTriggerResponseSchema, { trigger: toTriggerMessage(rows[0]) });
      },

      async listTriggers(request, context) {
        const tenant = await open(platform, context, request.tenant);
        await requireFunction(tenant.db, request.functionName);
        const { rows } = await tenant.db.query<TriggerRow>(
          `SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE function_name = $1 ORDER BY created_at, id`,
          [request.functionName],
        );
        return create(ListTriggersResponseSchema, { triggers: rows.map(toTriggerMessage) });
      },

      async updateTrigger(request, context) {
        const tenant = await open(platform, context, request.tenant);
        if (!uuidPattern.test(request.id)) throw triggerNotFound(request.functionName, request.id);
        const current = await tenant.db.query<TriggerRow>(
          `SELECT ${TRIGGER_COLUMNS} FROM triggers WHERE id = $1 AND function_name = $2`,
          [request.id, request.functionName],
        );
        const row = current.rows[0];
        if (!row) throw triggerNotFound(request.functionName, request.id);

        const next = { ...row };
        if (request.enabled !== undefined) next.enabled = request.enabled;
        if (request.maxAttempts !== undefined) next.max_attempts = checkRange('max_attempts', request.maxAttempts, 1, 20);
        if (request.backoffSeconds !== undefined) {
          next.backoff_seconds = checkRange('backoff_seconds', request.backoffSeconds, 1, 3600);
        }
        if (row.kind === 'event') {
          if (request.cron !== undefined || request.timeZone !== undefined) {
            throw domainError('INVALID_ARGUMENT', 'cron and time_zone apply to schedule triggers only', { metadata: { field: 'cron' } });
          }
          if (request.eventPattern !== undefined) next.event_pattern = checkPattern(request.eventPattern);
        } else {
          if (request.eventPattern !== undefined) {
            throw domainError('INVALID_ARGUMENT', 'event_pattern applies to event triggers only', {
              metadata: { field: 'event_pattern' },
            });
          }
          const checked = checkSchedule(request.cron ?? row.cron ?? '', request.timeZone ?? row.time_zone ?? 'UTC');
          next.cron = checked.cron;
          next.time_zone = checked.timeZone;
        }
        const { rows } = await tenant.db.query<TriggerRow>(
          `UPDATE triggers SET enabled = $2, max_attempts = $3, backoff_seconds = $4, event_pattern = $5,
                  cron = $6, time_zone = $7, updated_at = now()
           WHERE id = $1 RETURNING ${TRIGGER_COLUMNS}`,
          [row.id, next.enabled, next.max_attempts, next.backoff_seconds, next.event_pattern, next.cron, next.time_zone],
        );
        if (rows.length === 0) throw triggerNotFound(request.functionName, request.id);
        return create(UpdateTriggerResponseSchema, { trigger: toTriggerMessage(rows[0]) });
      },

      async deleteTrigger(request, context) {
        const tenant = await open(platform, context, request.tenant);
        if (!uuidPattern.test(request.id)) throw triggerNotFound(request.functionName, request.id);
        const deleted = await tenant.db.query('DELETE FROM triggers WHERE id = $1 AND function_name = $2', [
          request.id,
          request.functionName,
        ]);
        if (deleted.rowCount === 0) throw triggerNotFound(request.functionName, request.id);
        return create(DeleteTriggerResponseSchema, {});
      },

      async previewSchedule(request, context) {
        const tenant = await open(platform, context, request.tenant);
        const count = request.count === 0 ? DEFAULT_PREVIEW : checkRange('count', request.count, 1, MAX_PREVIEW);
        const zone = request.timeZone || (await tenant.settings()).timeZone || 'UTC';
        const checked = checkSchedule(request.cron, zone);
        const schedule = parseCron(checked.cron);
        const after = request.after ? timestampDate(request.after) : new Date();
        const times = nextFireTimes(schedule, { timeZone: checked.timeZone, after, count });
        return create(PreviewScheduleResponseSchema, {
          timeZone: checked.timeZone,
          fireTimes: times.map((time) =>
            create(FireTimeSchema, { time: timestampFromDate(time), localTime: localIsoTime(time, checked.timeZone) }),
          ),
        });
      },

      async listDeadLetters(request, context) {
        const tenant = await open(platform, context, request.tenant);
        const size = pageSize(request.pageSize);
        const kind = `dead-letters:${request.functionName}`;
        const cursor = decodePageToken(request.pageToken, kind);
        let before: [string, string] = ['infinity', 'ffffffff-ffff-ffff-ffff-ffffffffffff'];
        if (cursor !== undefined) {
          const [time, id] = cursor.split('|');
          if (!time || !id || !uuidPattern.test(id)) {
            throw domainError('INVALID_PAGE_TOKEN', 'the page token is not valid for this list', { metadata: { field: 'page_token' } });
          }
          before = [time, id];
        }
        const { rows } = await tenant.db.query<DeadLetterRow>(
          `SELECT id, delivery_id, event_id, trigger_id, function_name, event_type, event_payload, attempts,
                  last_error, created_at, failed_at, replayed_at, replay_count,
                  tansu_iso_time(failed_at) AS cursor_time
           FROM dead_letters
           WHERE ($1 = '' OR function_name = $1) AND (failed_at, id) < ($2::timestamptz, $3::uuid)
           ORDER BY failed_at DESC, id DESC LIMIT $4`,
          [request.functionName, before[0], before[1], size + 1],
        );
        const page = rows.slice(0, size);
        const last = page[page.length - 1];
        return create(ListDeadLettersResponseSchema, {
          deadLetters: page.map(toDeadLetterMessage),
          nextPageToken: rows.length > size ? encodePageToken(kind, `${last.cursor_time}|${last.id}`) : '',
        });
      },

      async replayDeadLetters(request, context) {
        const tenant = await open(platform, context, request.tenant);
        const filter = request.filter
          ? {
              functionName: request.filter.functionName || undefined,
              since: request.filter.since ? timestampDate(request.filter.since) : undefined,
              until: request.filter.until ? timestampDate(request.filter.until) : undefined,
            }
          : undefined;
        const replayedIds = await replayDeadLetters(tenant.db, {
          ids: request.ids.length > 0 ? request.ids : undefined,
          filter,
        });
        return create(ReplayDeadLettersResponseSchema, { replayedIds });
      },
    });
}

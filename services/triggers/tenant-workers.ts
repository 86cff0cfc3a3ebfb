/**
 * Background trigger work of every active tenant: one event dispatcher and one scheduler per
 * tenant, started with the server and when a tenant is provisioned, and stopped when the
 * tenant is deleted and at shutdown.
 *
 * Connections: each dispatcher keeps one LISTEN connection to its tenant database outside the
 * pool LRU, so a server with N active tenants holds N extra connections. Queries go through
 * the tenant's pool handle and count against the pool limits.
 */
import type { Logger } from 'pino';

import { invokeFunction, type InvocationOutcome } from '../functions/invoke.ts';
import { PLATFORM_FUNCTION_MAXIMA } from '../functions/limits.ts';
import type { Platform } from '../platform/platform.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import {
  createEventDispatcher,
  DEFAULT_LEASE_MS,
  type EventDelivery,
  type EventDispatcher,
  type InvokeResult,
} from './dispatcher.ts';
import { createScheduler, type ScheduledRun, type Scheduler } from './scheduler.ts';

/** Options of {@link createTenantWorkers}. */
export interface TenantWorkersOptions {
  /**
   * Lease of a claimed event delivery, in milliseconds. Default: the tenant's function
   * timeout plus 10 s, read when the tenant's workers start; TANSU_TRIGGER_LEASE_MS overrides it.
   */
  leaseMs?: number;
  /** Polling interval of the dispatchers, in milliseconds; default 1000. */
  pollIntervalMs?: number;
  /** Attempts each dispatcher runs at once; default 16. */
  concurrency?: number;
}

/** The running dispatchers and schedulers, keyed by tenant id. */
export interface TenantWorkers {
  /** Starts the workers of every active tenant. */
  startAll(): Promise<void>;
  /** Starts the workers of one tenant; does nothing when they already run. */
  start(tenantId: string): Promise<void>;
  /** Stops the workers of one tenant and waits for their runs in progress. */
  stop(tenantId: string): Promise<void>;
  /** Stops every tenant's workers. */
  stopAll(): Promise<void>;
  /** Ids of the tenants whose workers run. */
  running(): string[];
}

interface Workers {
  dispatcher: EventDispatcher;
  scheduler: Scheduler;
}

/** The event as a function receives it in `request.body`. */
export function eventBody(delivery: EventDelivery): Record<string, unknown> {
  return {
    id: delivery.event.id,
    type: delivery.event.type,
    subject: delivery.event.subject,
    time: delivery.event.createdAt.toISOString(),
    data: delivery.event.payload,
    attempt: delivery.attempt,
    maxAttempts: delivery.maxAttempts,
  };
}

function toInvokeResult(outcome: InvocationOutcome): InvokeResult {
  if (outcome.status === 'succeeded') return { ok: true, executionId: outcome.executionId };
  return { ok: false, executionId: outcome.executionId, error: outcome.error ?? `the function ended with status ${outcome.status}` };
}

function leaseFromEnvironment(): number | undefined {
  const raw = process.env.TANSU_TRIGGER_LEASE_MS;
  if (raw === undefined || raw === '') return undefined;
  const value = Number(raw);
  if (!Number.isInteger(value) || value <= 0) {
    throw new Error(`TANSU_TRIGGER_LEASE_MS must be a positive integer of milliseconds, got "${raw}"`);
  }
  return value;
}

/** Creates the registry of per-tenant workers; nothing runs before `startAll` or `start`. */
export function createTenantWorkers(platform: Platform, options: TenantWorkersOptions = {}): TenantWorkers {
  const logger: Logger = platform.logger.child({ component: 'triggers' });
  const workers = new Map<string, Workers>();
  const starting = new Map<string, Promise<void>>();
  const envLease = leaseFromEnvironment();

  function invokeDelivery(tenant: TenantContext) {
    return async (delivery: EventDelivery): Promise<InvokeResult> => {
      const outcome = await invokeFunction(platform.functions, tenant, delivery.functionName, {
        request: { method: 'POST', path: '/', query: {}, headers: { 'content-type': 'application/json' }, body: eventBody(delivery) },
        trigger: { type: delivery.replayed ? 'replay' : 'event', source: delivery.event.id },
      });
      // The delivery counts as done only once its execution row is stored.
      await outcome.recorded;
      return toInvokeResult(outcome);
    };
  }

  function invokeRun(tenant: TenantContext) {
    return async (run: ScheduledRun): Promise<InvokeResult> => {
      const slot = run.slot.toISOString();
      const outcome = await invokeFunction(platform.functions, tenant, run.functionName, {
        request: {
          method: 'POST',
          path: '/',
          query: {},
          headers: { 'content-type': 'application/json' },
          body: { slot, cron: run.cron, timeZone: run.timeZone, triggerId: run.triggerId },
        },
        trigger: { type: 'schedule', source: slot },
      });
      // The delivery counts as done only once its execution row is stored.
      await outcome.recorded;
      return toInvokeResult(outcome);
    };
  }

  async function startTenant(tenantId: string): Promise<void> {
    const tenant = await platform.tenants.get(tenantId);
    const settings = await tenant.settings();
    const leaseMs = options.leaseMs ?? envLease ?? DEFAULT_LEASE_MS;
    const dispatcher = createEventDispatcher({
      pool: tenant.db,
      listenerConfig: { connectionString: platform.provisioning.urlFor(tenant.record.databaseName) },
      tenant: tenant.id,
      invoke: invokeDelivery(tenant),
      logger,
      leaseMs,
      pollIntervalMs: options.pollIntervalMs,
      concurrency: options.concurrency ?? 16,
    });
    // A schedule run is not renewed, so it counts as in progress (for the overlap policy) for
    // the longest run any function may have, whatever the tenant's current timeout setting.
    const scheduleLeaseMs = options.leaseMs ?? envLease ?? PLATFORM_FUNCTION_MAXIMA.timeoutMs + 10_000;
    const scheduler = createScheduler({
      pool: tenant.db,
      tenant: tenant.id,
      invoke: invokeRun(tenant),
      logger,
      leaseMs: scheduleLeaseMs,
    });
    await dispatcher.start();
    scheduler.start();
    workers.set(tenantId, { dispatcher, scheduler });
  }

  const api: TenantWorkers = {
    async startAll() {
      const { rows } = await platform.platformDb.query<{ id: string }>("SELECT id FROM tenants WHERE state = 'active' ORDER BY id");
      for (const row of rows) {
        try {
          await api.start(row.id);
        } catch (error) {
          logger.error({ err: error, tenant: row.id }, 'failed to start the trigger workers of a tenant; its events wait until the next start');
        }
      }
    },

    async start(tenantId) {
      if (workers.has(tenantId)) return;
      const pending = starting.get(tenantId);
      if (pending) return pending;
      const task = startTenant(tenantId).finally(() => starting.delete(tenantId));
      starting.set(tenantId, task);
      await task;
      logger.info({ tenant: tenantId }, 'trigger workers started');
    },

    async stop(tenantId) {
      await starting.get(tenantId)?.catch(() => undefined);
      const running = workers.get(tenantId);
      if (!running) return;
      workers.delete(tenantId);
      await Promise.all([running.dispatcher.stop(), running.scheduler.stop()]);
      logger.info({ tenant: tenantId }, 'trigger workers stopped');
    },

    async stopAll() {
      await Promise.all([...workers.keys(), ...starting.keys()].map((id) => api.stop(id)));
    },

    running() {
      return [...workers.keys()];
    },
  };
  return api;
}

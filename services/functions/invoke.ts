import { randomUUID } from 'node:crypto';

import { domainError, retryLaterError } from '../core/errors.ts';
import type { TenantContext } from '../platform/tenant-registry.ts';
import type { FunctionsHost } from './functions-host.ts';
import { executionLimits, functionCeilings } from './limits.ts';
import type { ExecutionResult, HostCalls, JsonValue } from './runtime/runtime.ts';
import { readSecret } from './secrets.ts';

/** The request a function receives, whatever triggered it. */
export interface InvocationRequest {
  method: string;
  path: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** Parsed JSON body, raw text, or null for none. */
  body: unknown;
}

/** The trigger of an execution, recorded on its row. */
export interface InvocationTrigger {
  type: 'http' | 'grpc' | 'event' | 'schedule' | 'replay' | 'invoke';
  /** Event id, schedule slot or request id that caused the run. */
  source?: string;
}

/** The outcome of one invocation. Its execution row may still be on its way to the database. */
export interface InvocationOutcome {
  executionId: string;
  status: 'succeeded' | 'error' | 'timeout' | 'cpu_limit' | 'memory_limit';
  /** Present only when `status` is `succeeded`. */
  response?: { status: number; headers: Record<string, string>; body: unknown };
  /** Failure description for the tenant: the function's error and stack, or the limit breached. */
  error?: string;
  durationMs: number;
  /**
   * Settles when the execution row is written; rejects when writing it failed (the recorder
   * has logged that). Callers that report success onwards, such as trigger deliveries, await it.
   */
  recorded: Promise<void>;
}

/** Queued execution rows of one tenant above which a call waits for its own row to be written. */
const MAX_QUEUED_ROWS = 1000;

/**
 * Runs the active version of a tenant function and records the execution row with the trigger
 * type and source. The row is written after this resolves (see `recorded`), unless the tenant's
 * queue of unwritten rows is long, in which case this waits for it, so a slow database slows
 * callers down instead of filling memory. Every trigger counts against the tenant's executions
 * per minute.
 *
 * Throws NOT_FOUND when the function or an active version is missing. Throws RATE_LIMITED
 * (RESOURCE_EXHAUSTED, with a retry delay) when the tenant has used up its executions for now.
 * Neither error writes an execution row. Failures of the function itself, limits included,
 * resolve with their status.
 */
export async function invokeFunction(
  functions: FunctionsHost,
  tenant: TenantContext,
  name: string,
  input: { request: InvocationRequest; trigger: InvocationTrigger },
): Promise<InvocationOutcome> {
  const active = (await functions.versions.get(tenant.id, tenant.db, name))?.active;
  if (!active) {
    throw domainError('NOT_FOUND', `function "${name}" does not exist or has no active version`, {
      metadata: { function: name },
    });
  }
  const settings = await tenant.settings();

  const retryAfter = functions.rateLimiter.take(tenant.id, settings.functionExecutionsPerMinute);
  if (retryAfter > 0) {
    throw retryLaterError(
      'RATE_LIMITED',
      `tenant "${tenant.id}" reached its limit of ${settings.functionExecutionsPerMinute} function executions per minute; retry later`,
      retryAfter,
    );
  }

  const executionId = randomUUID();
  const startedAt = new Date();
  let result: ExecutionResult;
  try {
    result = await functions.runtime.execute({
      tenant: tenant.id,
      functionName: name,
      version: active.version,
      executionId,
      code: active.compiled,
      request: { ...input.request, body: (input.request.body ?? null) as JsonValue },
      limits: executionLimits(active, functionCeilings(settings)),
      host: hostCalls(functions, tenant),
    });
  } catch (error) {
    // The runtime rejects only for a closed runtime or a task it cannot take.
    throw domainError('UNAVAILABLE', 'the function runtime is not accepting executions; retry later', { cause: error });
  }

  const recorded = functions.recorder.record(tenant.id, tenant.db, {
    id: executionId,
    functionName: name,
    version: active.version,
    triggerType: input.trigger.type,
    triggerSource: input.trigger.source ?? null,
    startedAt,
    durationMs: result.durationMs,
    status: result.status,
    error: result.error ?? null,
    logs: result.logs,
  });
  // Marks the rejection handled; a caller that awaits `recorded` still gets it.
  recorded.catch(() => undefined);
  if (functions.recorder.pendingRows(tenant.id) > MAX_QUEUED_ROWS) await recorded;

  const fields = { tenant: tenant.id, function: name, version: active.version, execution: executionId };
  if (result.status === 'succeeded') {
    functions.logger.debug({ ...fields, durationMs: result.durationMs }, 'function execution succeeded');
  } else {
    functions.logger.info({ ...fields, status: result.status, durationMs: result.durationMs }, 'function execution failed');
  }

  return {
    executionId,
    status: result.status,
    response: result.response,
    error: result.error,
    durationMs: result.durationMs,
    recorded,
  };
}

function hostCalls(functions: FunctionsHost, tenant: TenantContext): HostCalls {
  return {
    // The query runs on this tenant's own database, so no function can name another tenant's secret.
    'secrets.get': async (secretName) => {
      if (typeof secretName !== 'string') throw new Error('ctx.secrets.get takes the secret name as a string');
      return readSecret(functions.secretBox, tenant, secretName);
    },
  };
}

/**
 * Loads the active version of a function into the runtime ahead of its first call, after a
 * deploy or activation. Runs in the background: failures are logged at warn and leave the first
 * call to start cold.
 */
export function prepareActiveVersion(functions: FunctionsHost, tenant: TenantContext, name: string): void {
  const prepared = (async () => {
    const active = (await functions.versions.get(tenant.id, tenant.db, name))?.active;
    if (!active) return;
    const settings = await tenant.settings();
    await functions.runtime.prepare({
      tenant: tenant.id,
      functionName: name,
      version: active.version,
      code: active.compiled,
      limits: executionLimits(active, functionCeilings(settings)),
    });
  })();
  prepared.catch((error: unknown) => {
    functions.logger.warn({ err: error, tenant: tenant.id, function: name }, 'preparing a function version failed');
  });
}

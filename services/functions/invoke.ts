import { randomUUID } from 'node:crypto';

import { domainError, retryLaterError } from '../core/errors.ts';
import type { Database } from '../db/pool-handle.ts';
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

/** The outcome of one invocation, after its execution row is written. */
export interface InvocationOutcome {
  executionId: string;
  status: 'succeeded' | 'error' | 'timeout' | 'cpu_limit' | 'memory_limit';
  /** Present only when `status` is `succeeded`. */
  response?: { status: number; headers: Record<string, string>; body: unknown };
  /** Failure description for the tenant: the function's error and stack, or the limit breached. */
  error?: string;
  durationMs: number;
}

interface ActiveVersion {
  version: number;
  compiled: string;
  timeoutMs: number | null;
  memoryMb: number | null;
}

/**
 * Runs the active version of a tenant function and records the execution row with the trigger
 * type and source. Every trigger counts against the tenant's executions per minute.
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
  const active = await loadActiveVersion(tenant.db, name);
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

  await tenant.db.query(
    `INSERT INTO executions
       (id, function_name, version, trigger_type, trigger_source, started_at, duration_ms, status, error, logs)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
    [
      executionId,
      name,
      active.version,
      input.trigger.type,
      input.trigger.source ?? null,
      startedAt,
      result.durationMs,
      result.status,
      result.error ?? null,
      JSON.stringify(result.logs),
    ],
  );

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
  };
}

async function loadActiveVersion(db: Database, name: string): Promise<ActiveVersion> {
  const { rows } = await db.query<ActiveVersion>(
    `SELECT v.version, v.compiled, f.timeout_ms AS "timeoutMs", f.memory_mb AS "memoryMb"
       FROM functions f
       JOIN function_versions v ON v.function_name = f.name AND v.version = f.active_version
      WHERE f.name = $1`,
    [name],
  );
  const active = rows[0];
  if (!active) {
    throw domainError('NOT_FOUND', `function "${name}" does not exist or has no active version`, {
      metadata: { function: name },
    });
  }
  return active;
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

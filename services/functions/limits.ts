import { invalidArgument } from '../core/errors.ts';
import type { IdentitySettings } from '../identity/settings.ts';
import { MAX_MEMORY_MB, MIN_MEMORY_MB, type ExecutionLimits } from './runtime/runtime.ts';

/** Platform maxima: no tenant setting raises a function's limits above these. */
export const PLATFORM_FUNCTION_MAXIMA = { timeoutMs: 300_000, memoryMb: MAX_MEMORY_MB } as const;

/** Smallest wall-time limit a function may request, in milliseconds. */
export const MIN_TIMEOUT_MS = 10;

/** A tenant's ceilings: its settings, capped by the platform maxima. */
export interface FunctionCeilings {
  timeoutMs: number;
  memoryMb: number;
}

/** Limits stored on a function; null means the tenant ceiling applies. */
export interface StoredLimits {
  timeoutMs: number | null;
  memoryMb: number | null;
}

/** Computes a tenant's ceilings from its effective settings. */
export function functionCeilings(settings: IdentitySettings): FunctionCeilings {
  return {
    timeoutMs: Math.min(settings.functionTimeoutMs, PLATFORM_FUNCTION_MAXIMA.timeoutMs),
    memoryMb: Math.max(MIN_MEMORY_MB, Math.min(settings.functionMemoryMb, PLATFORM_FUNCTION_MAXIMA.memoryMb)),
  };
}

/**
 * Checks limits requested at deploy against the tenant's ceilings. Zero or a missing value
 * means the ceiling applies. Throws INVALID_ARGUMENT naming the field.
 */
export function checkRequestedLimits(requested: { timeoutMs: number; memoryMb: number }, ceilings: FunctionCeilings): StoredLimits {
  const { timeoutMs, memoryMb } = requested;
  if (timeoutMs !== 0 && (!Number.isInteger(timeoutMs) || timeoutMs < MIN_TIMEOUT_MS || timeoutMs > ceilings.timeoutMs)) {
    throw invalidArgument(
      'limits.timeout_ms',
      `limits.timeout_ms must be an integer from ${MIN_TIMEOUT_MS} to the tenant's ceiling of ${ceilings.timeoutMs} ms, got ${timeoutMs}`,
    );
  }
  if (memoryMb !== 0 && (!Number.isInteger(memoryMb) || memoryMb < MIN_MEMORY_MB || memoryMb > ceilings.memoryMb)) {
    throw invalidArgument(
      'limits.memory_mb',
      `limits.memory_mb must be an integer from ${MIN_MEMORY_MB} to the tenant's ceiling of ${ceilings.memoryMb} MiB, got ${memoryMb}`,
    );
  }
  return { timeoutMs: timeoutMs || null, memoryMb: memoryMb || null };
}

/**
 * Computes the limits of one execution. A ceiling lowered after the deploy wins over the
 * stored value. CPU time is bounded by the same figure as wall time.
 */
export function executionLimits(stored: StoredLimits, ceilings: FunctionCeilings): ExecutionLimits {
  const timeoutMs = Math.min(stored.timeoutMs ?? ceilings.timeoutMs, ceilings.timeoutMs);
  const memoryMb = Math.min(stored.memoryMb ?? ceilings.memoryMb, ceilings.memoryMb);
  return { timeoutMs, cpuMs: timeoutMs, memoryMb };
}

/**
 * Per-tenant token buckets that bound executions per minute. A bucket holds at most the
 * tenant's per-minute limit and refills at that many tokens per minute, so a tenant may burst
 * up to its whole minute at once and then runs at the steady rate.
 *
 * NOTE: the buckets live in this process. With several replicas each one allows the full rate,
 * so the cluster-wide limit is the per-minute limit times the replica count.
 */
export interface ExecutionRateLimiter {
  /**
   * Takes one token for `tenant`. Returns 0 when the execution may run, or the seconds until a
   * token is available when it may not.
   */
  take(tenant: string, perMinute: number, now?: number): number;
  /** Forgets a tenant's bucket, after the tenant is deleted. */
  forget(tenant: string): void;
}

interface Bucket {
  tokens: number;
  updatedAt: number;
}

/** Creates an empty limiter. */
export function createExecutionRateLimiter(): ExecutionRateLimiter {
  const buckets = new Map<string, Bucket>();

  return {
    take(tenant, perMinute, now = Date.now()) {
      const bucket = buckets.get(tenant) ?? { tokens: perMinute, updatedAt: now };
      const refill = ((now - bucket.updatedAt) / 60_000) * perMinute;
      bucket.tokens = Math.min(perMinute, bucket.tokens + refill);
      bucket.updatedAt = now;
      buckets.set(tenant, bucket);

      if (bucket.tokens >= 1) {
        bucket.tokens -= 1;
        return 0;
      }
      return ((1 - bucket.tokens) / perMinute) * 60;
    },

    forget(tenant) {
      buckets.delete(tenant);
    },
  };
}

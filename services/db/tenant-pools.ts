import pg from 'pg';

import { databaseErrorSummary, POOL_TIMEOUTS } from '../core/database-errors.ts';
import type { Logger } from '../core/logger.ts';

/** Options for createTenantPools. */
export interface TenantPoolsOptions {
  /** Connection URL of a database on the tenant's cluster. */
  urlFor(databaseName: string): string;
  /** Connections per tenant pool. */
  poolSize: number;
  /** Connections that all pools together may hold; least recently used idle pools close first. */
  maxConnections: number;
  logger: Logger;
}

/** Per-tenant `pg` pools kept in a least-recently-used list under a global connection cap. */
export interface TenantPools {
  /** Returns the pool of a tenant database, opening it if needed. Take it per use; do not keep it. */
  get(databaseName: string): pg.Pool;
  /** Closes the pool of one database, waiting for its checked-out clients to return. */
  close(databaseName: string): Promise<void>;
  /** Closes every pool. */
  closeAll(): Promise<void>;
  /** Number of open pools. */
  readonly size: number;
}

/**
 * Creates the pool LRU. With `maxConnections / poolSize` pools open, opening another closes
 * the least recently used pool that has no checked-out client, so 1,000 tenants do not hold
 * 1,000 pools' worth of connections.
 */
export function createTenantPools(options: TenantPoolsOptions): TenantPools {
  // A Map iterates in insertion order; re-inserting on use keeps the least recently used first.
  const pools = new Map<string, pg.Pool>();
  const maxPools = Math.max(1, Math.floor(options.maxConnections / options.poolSize));

  function evictIfFull(): void {
    if (pools.size < maxPools) return;
    for (const [name, pool] of pools) {
      const busy = pool.totalCount - pool.idleCount + pool.waitingCount;
      if (busy === 0) {
        pools.delete(name);
        pool.end().catch((error) => options.logger.warn({ err: error, database: name }, 'closing an idle tenant pool failed'));
        return;
      }
    }
    // NOTE: when every open pool is busy the cap is exceeded until one becomes idle; a strict
    // cap would have to queue tenants instead.
    options.logger.warn({ pools: pools.size, maxPools }, 'every tenant pool is busy; opening one more than the cap');
  }

  return {
    get(databaseName) {
      const existing = pools.get(databaseName);
      if (existing) {
        pools.delete(databaseName);
        pools.set(databaseName, existing);
        return existing;
      }
      evictIfFull();
      const pool = new pg.Pool({
        connectionString: options.urlFor(databaseName),
        max: options.poolSize,
        idleTimeoutMillis: 30_000,
        ...POOL_TIMEOUTS,
      });
      pool.on('error', (error) =>
        options.logger.warn({ err: databaseErrorSummary(error), database: databaseName }, 'idle tenant connection closed'),
      );
      pools.set(databaseName, pool);
      return pool;
    },
    async close(databaseName) {
      const pool = pools.get(databaseName);
      if (!pool) return;
      pools.delete(databaseName);
      await pool.end();
    },
    async closeAll() {
      const all = [...pools.values()];
      pools.clear();
      await Promise.all(all.map((pool) => pool.end()));
    },
    get size() {
      return pools.size;
    },
  };
}

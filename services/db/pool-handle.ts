import type pg from 'pg';

/**
 * The subset of `pg.Pool` that tenant code uses: one-off queries and checked-out clients.
 * A handle looks its pool up on every call, so code may keep it while the pool LRU closes and
 * reopens the underlying pool.
 */
export type Database = Pick<pg.Pool, 'query' | 'connect'>;

/** Returns a Database that resolves its pool through `currentPool` on each call. */
export function poolHandle(currentPool: () => pg.Pool): Database {
  const query = ((...args: Parameters<pg.Pool['query']>) => currentPool().query(...args)) as pg.Pool['query'];
  return { query, connect: () => currentPool().connect() };
}

/** Runs `work` in a transaction on a client of `db`, committing on success. */
export async function inTransaction<T>(db: Database, work: (client: pg.PoolClient) => Promise<T>): Promise<T> {
  const client = await db.connect();
  try {
    await client.query('BEGIN');
    const result = await work(client);
    await client.query('COMMIT');
    return result;
  } catch (error) {
    await client.query('ROLLBACK').catch(() => {});
    throw error;
  } finally {
    client.release();
  }
}

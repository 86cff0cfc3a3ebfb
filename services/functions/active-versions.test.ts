import type pg from 'pg';

import { createMigratedDatabase } from '../../test/support/database.ts';
import { createActiveVersionCache } from './active-versions.ts';

type Database = Awaited<ReturnType<typeof createMigratedDatabase>>;

let database: Database;
let pool: pg.Pool;

beforeAll(async () => {
  database = await createMigratedDatabase('tenant');
  pool = database.pool;
});

afterAll(async () => {
  await database.drop();
});

async function deploy(name: string, version: number, code: string, isPublic = false): Promise<void> {
  await pool.query(
    `INSERT INTO functions (name, public) VALUES ($1, $2)
     ON CONFLICT (name) DO UPDATE SET public = EXCLUDED.public`,
    [name, isPublic],
  );
  await pool.query(
    `INSERT INTO function_versions (function_name, version, source, language, compiled, content_hash, author)
     VALUES ($1, $2, '', 'javascript', $3, 'hash', 'test')`,
    [name, version, code],
  );
  await pool.query('UPDATE functions SET active_version = $2 WHERE name = $1', [name, version]);
}

/** Wraps the pool in a Database that counts the queries it passes on. */
function countingDb() {
  const counter = { queries: 0 };
  const db = {
    query: ((...args: Parameters<pg.Pool['query']>) => {
      counter.queries += 1;
      return pool.query(...args);
    }) as pg.Pool['query'],
    connect: () => pool.connect(),
  };
  return { db, counter };
}

describe('active version cache', () => {
  test('reloads an entry after maxAgeMs', async () => {
    await deploy('aging', 1, 'v1', true);
    let clock = 1_000_000;
    const cache = createActiveVersionCache({ maxAgeMs: 1000, now: () => clock });
    const { db, counter } = countingDb();

    const first = await cache.get('t', db, 'aging');
    expect(first).toEqual({ public: true, active: { version: 1, compiled: 'v1', timeoutMs: null, memoryMb: null } });
    await deploy('aging', 2, 'v2', true);

    clock += 999;
    expect((await cache.get('t', db, 'aging'))?.active?.compiled).toBe('v1');
    expect(counter.queries).toBe(1);

    clock += 1;
    expect((await cache.get('t', db, 'aging'))?.active?.compiled).toBe('v2');
    expect(counter.queries).toBe(2);
  });

  test('forget forces a reload', async () => {
    await deploy('forgotten', 1, 'v1');
    const cache = createActiveVersionCache({ maxAgeMs: 60_000 });
    const { db } = countingDb();
    await cache.get('t', db, 'forgotten');
    await deploy('forgotten', 2, 'v2');
    cache.forget('t', 'forgotten');
    expect((await cache.get('t', db, 'forgotten'))?.active?.version).toBe(2);
  });

  test('forget discards a load in flight', async () => {
    await deploy('racing', 1, 'v1');
    const cache = createActiveVersionCache({ maxAgeMs: 60_000 });
    const { db, counter } = countingDb();
    const inFlight = cache.get('t', db, 'racing');
    cache.forget('t', 'racing');
    await deploy('racing', 2, 'v2');
    expect((await inFlight)?.active?.version).toBe(1);
    expect((await cache.get('t', db, 'racing'))?.active?.version).toBe(2);
    expect(counter.queries).toBe(2);
  });

  test('concurrent gets share one query', async () => {
    await deploy('shared', 1, 'v1');
    const cache = createActiveVersionCache();
    const { db, counter } = countingDb();
    const entries = await Promise.all(Array.from({ length: 5 }, () => cache.get('t', db, 'shared')));
    expect(entries.map((entry) => entry?.active?.version)).toEqual([1, 1, 1, 1, 1]);
    expect(counter.queries).toBe(1);
  });

  test('missing functions are not cached', async () => {
    const cache = createActiveVersionCache({ maxAgeMs: 60_000 });
    const { db } = countingDb();
    expect(await cache.get('t', db, 'late')).toBeUndefined();
    await deploy('late', 1, 'v1');
    expect((await cache.get('t', db, 'late'))?.active?.compiled).toBe('v1');
  });

  test('function without a version has no code', async () => {
    await pool.query("INSERT INTO functions (name, public) VALUES ('empty', true)");
    const cache = createActiveVersionCache();
    expect(await cache.get('t', countingDb().db, 'empty')).toEqual({ public: true, active: undefined });
  });

  test('forgetTenant drops one tenant only', async () => {
    await deploy('per-tenant', 1, 'v1');
    const cache = createActiveVersionCache({ maxAgeMs: 60_000 });
    const { db, counter } = countingDb();
    await cache.get('a', db, 'per-tenant');
    await cache.get('b', db, 'per-tenant');
    expect(counter.queries).toBe(2);
    cache.forgetTenant('a');
    await cache.get('a', db, 'per-tenant');
    await cache.get('b', db, 'per-tenant');
    expect(counter.queries).toBe(3);
  });

  test('evicts least recently used beyond bounds', async () => {
    await deploy('lru-a', 1, 'aaaa');
    await deploy('lru-b', 1, 'bbbb');
    await deploy('lru-c', 1, 'cccc');
    const byCount = createActiveVersionCache({ maxAgeMs: 60_000, maxEntries: 2 });
    const counted = countingDb();
    await byCount.get('t', counted.db, 'lru-a');
    await byCount.get('t', counted.db, 'lru-b');
    await byCount.get('t', counted.db, 'lru-a');
    await byCount.get('t', counted.db, 'lru-c');
    expect(counted.counter.queries).toBe(3);
    await byCount.get('t', counted.db, 'lru-a');
    expect(counted.counter.queries).toBe(3);
    await byCount.get('t', counted.db, 'lru-b');
    expect(counted.counter.queries).toBe(4);

    const bySize = createActiveVersionCache({ maxAgeMs: 60_000, maxCodeChars: 8 });
    const sized = countingDb();
    await bySize.get('t', sized.db, 'lru-a');
    await bySize.get('t', sized.db, 'lru-b');
    await bySize.get('t', sized.db, 'lru-c');
    await bySize.get('t', sized.db, 'lru-a');
    expect(sized.counter.queries).toBe(4);
  });
});

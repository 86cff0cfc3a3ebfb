import type { Database } from '../db/pool-handle.ts';

/** The part of a function a call needs: whether it is public, and its active code. */
export interface FunctionEntry {
  public: boolean;
  /** The active version with its compiled code and stored limits; undefined before a deploy. */
  active: ActiveVersion | undefined;
}

/** The active version of a function, as the runtime needs it. */
export interface ActiveVersion {
  version: number;
  compiled: string;
  timeoutMs: number | null;
  memoryMb: number | null;
}

/**
 * Function rows and active code per (tenant, function), kept in process memory so a warm call
 * reads neither `functions` nor `function_versions`.
 *
 * Freshness: a deploy, activation or deletion through this process calls `forget`, so the
 * next call in this process loads the new state. A change made through another replica, or
 * straight in the database, is seen here at most `maxAgeMs` later, when the entry is loaded
 * again. Missing functions are not cached, so a function created elsewhere is found at once.
 */
export interface ActiveVersionCache {
  /**
   * Returns the function's entry, loaded from `db` when absent or older than `maxAgeMs`, or
   * undefined when the function does not exist.
   */
  get(tenant: string, db: Database, name: string): Promise<FunctionEntry | undefined>;
  /** Drops one function's entry, after a deploy, activation or deletion. */
  forget(tenant: string, name: string): void;
  /** Drops every entry of a tenant, after the tenant is deleted. */
  forgetTenant(tenant: string): void;
}

/** Options of {@link createActiveVersionCache}, with read-only defaults. */
export interface ActiveVersionCacheOptions {
  /** How long an entry is served before it is loaded again, in milliseconds. Default 1,000. */
  maxAgeMs?: number;
  /** Entries kept; the least recently used go first. Default 1,000. */
  maxEntries?: number;
  /** Characters of compiled code kept over all entries. Default 64 Mi. */
  maxCodeChars?: number;
  /** Clock, for tests. */
  now?: () => number;
}

const defaults = { maxAgeMs: 1000, maxEntries: 1000, maxCodeChars: 64 * 1024 * 1024 } as const;

interface Slot {
  entry: FunctionEntry;
  loadedAt: number;
  codeChars: number;
}

/** Creates an empty cache. */
export function createActiveVersionCache(options: ActiveVersionCacheOptions = {}): ActiveVersionCache {
  const maxAgeMs = options.maxAgeMs ?? defaults.maxAgeMs;
  const maxEntries = options.maxEntries ?? defaults.maxEntries;
  const maxCodeChars = options.maxCodeChars ?? defaults.maxCodeChars;
  const now = options.now ?? Date.now;

  // Map order is recency order: a hit moves its key to the end, eviction takes from the front.
  const slots = new Map<string, Slot>();
  const loading = new Map<string, Promise<FunctionEntry | undefined>>();
  let codeChars = 0;
  // Bumped by every forget. A load that started before a forget does not store its result, so
  // a deploy that commits while a load is in flight cannot leave the old version cached.
  let generation = 0;

  function drop(key: string): void {
    const slot = slots.get(key);
    if (!slot) return;
    slots.delete(key);
    codeChars -= slot.codeChars;
  }

  function store(key: string, entry: FunctionEntry): void {
    drop(key);
    const chars = entry.active?.compiled.length ?? 0;
    if (chars > maxCodeChars) return;
    slots.set(key, { entry, loadedAt: now(), codeChars: chars });
    codeChars += chars;
    for (const [oldest] of slots) {
      if (slots.size <= maxEntries && codeChars <= maxCodeChars) break;
      drop(oldest);
    }
  }

  async function load(key: string, db: Database, name: string): Promise<FunctionEntry | undefined> {
    const started = generation;
    const entry = await readEntry(db, name);
    if (entry && generation === started) store(key, entry);
    return entry;
  }

  return {
    get(tenant, db, name) {
      const key = `${tenant}\u0000${name}`;
      const slot = slots.get(key);
      if (slot && now() - slot.loadedAt < maxAgeMs) {
        slots.delete(key);
        slots.set(key, slot);
        return Promise.resolve(slot.entry);
      }
      // Concurrent calls for the same function share one query.
      const pending = loading.get(key);
      if (pending) return pending;
      const started: Promise<FunctionEntry | undefined> = load(key, db, name).finally(() => {
        if (loading.get(key) === started) loading.delete(key);
      });
      loading.set(key, started);
      return started;
    },

    forget(tenant, name) {
      generation += 1;
      const key = `${tenant}\u0000${name}`;
      drop(key);
      loading.delete(key);
    },

    forgetTenant(tenant) {
      generation += 1;
      const prefix = `${tenant}\u0000`;
      for (const key of [...slots.keys()]) if (key.startsWith(prefix)) drop(key);
      for (const key of [...loading.keys()]) if (key.startsWith(prefix)) loading.delete(key);
    },
  };
}

async function readEntry(db: Database, name: string): Promise<FunctionEntry | undefined> {
  const { rows } = await db.query<{
    public: boolean;
    version: number | null;
    compiled: string | null;
    timeoutMs: number | null;
    memoryMb: number | null;
  }>(
    `SELECT f.public, v.version, v.compiled, f.timeout_ms AS "timeoutMs", f.memory_mb AS "memoryMb"
       FROM functions f
       LEFT JOIN function_versions v ON v.function_name = f.name AND v.version = f.active_version
      WHERE f.name = $1`,
    [name],
  );
  const row = rows[0];
  if (!row) return undefined;
  const active =
    row.version === null || row.compiled === null
      ? undefined
      : { version: row.version, compiled: row.compiled, timeoutMs: row.timeoutMs, memoryMb: row.memoryMb };
  return { public: row.public, active };
}

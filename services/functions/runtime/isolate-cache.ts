/**
 * Idle warm isolates of one worker, keyed by tenant, function, version and memory limit,
 * bounded in total with least-recently-used eviction. An isolate is checked out for one
 * execution at a time, so concurrent executions of the same function get separate isolates.
 */
export interface IsolateCache<Entry extends CachedIsolate> {
  /** Removes and returns an idle isolate for `key` running `code`, if there is one. */
  take(key: string, code: string): Entry | undefined;
  /** Returns an isolate to the idle set, evicting and disposing the least recently used. */
  put(entry: Entry): void;
  /** Disposes every idle isolate. */
  clear(): void;
  /** Number of idle isolates. */
  readonly size: number;
}

/** What the cache needs from a warm isolate. */
export interface CachedIsolate {
  key: string;
  code: string;
  dispose(): void;
}

/** Creates an empty cache holding at most `maxIdle` idle isolates. */
export function createIsolateCache<Entry extends CachedIsolate>(
  maxIdle: number,
): IsolateCache<Entry> {
  const byKey = new Map<string, Entry[]>();
  // Insertion order of a Set is the recency order: the first entry is the least recent.
  const recency = new Set<Entry>();

  function remove(entry: Entry): void {
    recency.delete(entry);
    const entries = byKey.get(entry.key);
    if (!entries) return;
    const index = entries.indexOf(entry);
    if (index >= 0) entries.splice(index, 1);
    if (entries.length === 0) byKey.delete(entry.key);
  }

  return {
    take(key, code) {
      const entries = byKey.get(key);
      if (!entries) return undefined;
      // A version is immutable, but a caller that reuses a number for new code gets a cold start.
      const entry = entries.findLast((candidate) => candidate.code === code);
      if (!entry) return undefined;
      remove(entry);
      return entry;
    },

    put(entry) {
      if (maxIdle <= 0) {
        entry.dispose();
        return;
      }
      const entries = byKey.get(entry.key) ?? [];
      entries.push(entry);
      byKey.set(entry.key, entries);
      recency.add(entry);
      while (recency.size > maxIdle) {
        const oldest = recency.values().next().value as Entry;
        remove(oldest);
        oldest.dispose();
      }
    },

    clear() {
      for (const entry of recency) entry.dispose();
      recency.clear();
      byKey.clear();
    },

    get size() {
      return recency.size;
    },
  };
}

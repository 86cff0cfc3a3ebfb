/**
 * Idle warm isolates of one worker, keyed by tenant, function, version and memory limit,
 * bounded in count and in total heap with least-recently-used eviction, and disposed after an
 * idle timeout. An isolate is checked out for one execution at a time, so concurrent
 * executions of the same function get separate isolates.
 */
export interface IsolateCache<Entry extends CachedIsolate> {
  /** Removes and returns an idle isolate for `key` running `code`, if there is one. */
  take(key: string, code: string): Entry | undefined;
  /** Returns an isolate to the idle set, evicting and disposing the least recently used. */
  put(entry: Entry): void;
  /** Disposes the isolates idle for longer than the idle timeout. */
  sweep(): void;
  /** Disposes every idle isolate. */
  clear(): void;
  /** Number of idle isolates. */
  readonly size: number;
  /** Sum of the idle isolates' `heapBytes`. */
  readonly heapBytes: number;
}

/** The part of a warm isolate the cache uses. */
export interface CachedIsolate {
  key: string;
  code: string;
  /** Heap the isolate holds, in bytes, measured when it was returned to the cache. */
  heapBytes: number;
  dispose(): void;
}

/** Bounds of {@link createIsolateCache}. */
export interface IsolateCacheLimits {
  /** Idle isolates kept; zero keeps none. */
  maxIdle: number;
  /** Sum of `heapBytes` over the idle isolates. */
  maxHeapBytes: number;
  /** Milliseconds an isolate may stay idle before `sweep` disposes it. */
  idleTimeoutMs: number;
  /** Clock in milliseconds, for tests. */
  now?: () => number;
}

/** Creates an empty cache. */
export function createIsolateCache<Entry extends CachedIsolate>(limits: IsolateCacheLimits): IsolateCache<Entry> {
  const now = limits.now ?? (() => performance.now());
  const byKey = new Map<string, Entry[]>();
  // Insertion order of a Map is the recency order: the first entry is the least recent. The
  // value is the time the entry became idle.
  const recency = new Map<Entry, number>();
  let heapBytes = 0;

  function remove(entry: Entry): void {
    if (!recency.delete(entry)) return;
    heapBytes -= entry.heapBytes;
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
      if (limits.maxIdle <= 0 || entry.heapBytes > limits.maxHeapBytes) {
        entry.dispose();
        return;
      }
      const entries = byKey.get(entry.key) ?? [];
      entries.push(entry);
      byKey.set(entry.key, entries);
      recency.set(entry, now());
      heapBytes += entry.heapBytes;
      while (recency.size > limits.maxIdle || heapBytes > limits.maxHeapBytes) {
        const oldest = recency.keys().next().value as Entry;
        remove(oldest);
        oldest.dispose();
      }
    },

    sweep() {
      const cutoff = now() - limits.idleTimeoutMs;
      for (const [entry, idleSince] of recency) {
        // Entries are in recency order, so the rest became idle later.
        if (idleSince > cutoff) break;
        remove(entry);
        entry.dispose();
      }
    },

    clear() {
      for (const entry of recency.keys()) entry.dispose();
      recency.clear();
      byKey.clear();
      heapBytes = 0;
    },

    get size() {
      return recency.size;
    },

    get heapBytes() {
      return heapBytes;
    },
  };
}

import { randomUUID } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { BroadcastChannel } from 'node:worker_threads';

import { Piscina } from 'piscina';

import type { ExecutionResult, ExecutionTask, HostCalls } from './types.ts';
import type {
  CheckTask,
  HostCallMessage,
  HostCallReply,
  IdleIsolateStats,
  LoadFailure,
  PrepareTask,
  StatsTask,
  WorkerSettings,
  WorkerTask,
} from './worker.ts';

export type * from './types.ts';
export type { IdleIsolateStats, LoadFailure } from './worker.ts';

/**
 * Options of {@link createFunctionRuntime}. Every bound applies per execution.
 */
export interface FunctionRuntimeOptions {
  /** Piscina worker threads. Default: 2, or 1 on a single-CPU machine. */
  maxWorkers?: number;
  /**
   * Executions one worker runs at once. The isolates run on isolated-vm's threads, so a worker
   * thread only waits on them, and a spinning function does not hold up the others. Default 16.
   */
  concurrentTasksPerWorker?: number;
  /** Idle warm isolates each worker keeps, across all tenants. Default 64. */
  maxIdleIsolatesPerWorker?: number;
  /**
   * Heap the idle isolates of one worker may hold together, in MiB; the least recently used
   * go first. Default 256: with the default 2 workers at most 512 MiB stays idle, while about
   * 64 small isolates (1 to 4 MiB each) fit.
   */
  maxIdleHeapMbPerWorker?: number;
  /**
   * Heap above which an isolate is disposed after its execution instead of kept warm, in
   * MiB, so one large function cannot fill the idle budget. Default 64, half the default
   * function memory limit.
   */
  maxReusedIsolateHeapMb?: number;
  /** Milliseconds an idle isolate is kept before it is disposed. Default 60,000. */
  idleIsolateTimeoutMs?: number;
  /** Log entries kept; later ones are counted in one closing warning entry. Default 200. */
  maxLogEntries?: number;
  /** UTF-8 bytes of log messages and fields kept. Default 64 KiB. */
  maxLogBytes?: number;
  /** Characters of one log message; longer ones are cut. Default 8,192. */
  maxLogMessageChars?: number;
  /** Characters of an error message or stack. Default 4,096. */
  maxErrorChars?: number;
  /** UTF-8 bytes of a response body; a larger one ends the execution as `error`. Default 1 MiB. */
  maxResponseBytes?: number;
  /** JSON bytes of the arguments of one host call. Default 1 MiB. */
  maxHostCallBytes?: number;
  /**
   * How long after `timeoutMs` the main thread waits for a worker before it reports the
   * execution as timed out, in milliseconds. The worker's own watchdog normally ends the
   * execution first. Default 5,000.
   */
  workerGraceMs?: number;
}

/** Runs tenant functions in sandboxed isolates. */
export interface FunctionRuntime {
  /**
   * Runs one execution. Resolves with the outcome for every failure of the function itself,
   * limits included; rejects only for invalid arguments or a closed runtime.
   */
  execute(task: ExecutionTask): Promise<ExecutionResult>;
  /**
   * Loads a version into an idle isolate of one worker, so that its first execution there is
   * warm. An execution that arrives while the isolate is being prepared waits for it.
   * Resolves when the isolate is ready or was discarded; the module's own errors surface on
   * the first execution, not here.
   * NOTE: piscina picks the worker, so with several workers an execution may still land on a
   * worker that has not loaded the version and start cold there.
   */
  prepare(task: Omit<ExecutionTask, 'executionId' | 'request' | 'host'>): Promise<void>;
  /**
   * Loads a version into a fresh isolate under `limits` and discards it, to check a module
   * before it is stored. Resolves with undefined when the module evaluates and its default
   * export is a function, and otherwise with the top-level error or the limit it breached.
   * The module's top level runs, but it has no `ctx`, so it can make no host calls.
   */
  check(task: Omit<ExecutionTask, 'executionId' | 'request' | 'host'>): Promise<LoadFailure | undefined>;
  /**
   * Reports the idle isolates of one worker and the heap they hold. Piscina picks the
   * worker, so with one worker this covers the whole runtime.
   */
  idleIsolates(): Promise<IdleIsolateStats>;
  /** Stops the workers; executions still running end with a rejection. */
  close(): Promise<void>;
}

const MIB = 1024 * 1024;

/** Smallest memory limit isolated-vm accepts, in MiB. */
export const MIN_MEMORY_MB = 8;

/** Largest memory limit the runtime accepts, in MiB. */
export const MAX_MEMORY_MB = 512;

/**
 * Platform default limits, for callers with no tenant override. The CPU default equals the
 * wall-time default, so by default only the wall clock stops a function.
 */
export const defaultExecutionLimits = { timeoutMs: 30_000, cpuMs: 30_000, memoryMb: 128 } as const;

const hostNamePattern = /^[A-Za-z_$][\w$]*(\.[A-Za-z_$][\w$]*)*$/;
const reservedHostRoots = new Set(['tenant', 'execution', 'log']);
const reservedSegments = new Set(['__proto__', 'prototype', 'constructor']);

/**
 * Creates a function runtime: a piscina pool whose workers run each execution in an
 * isolated-vm isolate.
 *
 * Isolate reuse: each worker keeps idle isolates per (tenant, function, version, memory
 * limit), with the module already evaluated. A warm execution gets a fresh `request` and
 * `ctx`, but module scope and `globalThis` persist between executions that reuse the
 * isolate, as in Cloudflare Workers. An isolate serves one execution at a time and belongs to
 * one function version of one tenant, so tenants never share an isolate. An isolate is
 * discarded after any timeout, CPU or memory breach, when its heap after an execution is
 * above `maxReusedIsolateHeapMb`, when it stays idle for `idleIsolateTimeoutMs`, and when
 * the worker's idle isolates hold more than `maxIdleHeapMbPerWorker` (least recent first). Piscina does not route by tenant, so
 * each worker warms its own isolates.
 */
export function createFunctionRuntime(options: FunctionRuntimeOptions = {}): FunctionRuntime {
  checkNodeSnapshotDisabled();
  const workerSettings: WorkerSettings = {
    maxIdleIsolates: positiveInteger(options.maxIdleIsolatesPerWorker, 64, 'maxIdleIsolatesPerWorker'),
    maxIdleHeapBytes: MIB * positiveInteger(options.maxIdleHeapMbPerWorker, 256, 'maxIdleHeapMbPerWorker'),
    maxReusedHeapBytes: MIB * positiveInteger(options.maxReusedIsolateHeapMb, 64, 'maxReusedIsolateHeapMb'),
    idleIsolateTimeoutMs: positiveInteger(options.idleIsolateTimeoutMs, 60_000, 'idleIsolateTimeoutMs'),
    maxLogEntries: positiveInteger(options.maxLogEntries, 200, 'maxLogEntries'),
    maxLogBytes: positiveInteger(options.maxLogBytes, 64 * 1024, 'maxLogBytes'),
    maxLogMessageChars: positiveInteger(options.maxLogMessageChars, 8192, 'maxLogMessageChars'),
    maxErrorChars: positiveInteger(options.maxErrorChars, 4096, 'maxErrorChars'),
    maxResponseBytes: positiveInteger(options.maxResponseBytes, 1024 * 1024, 'maxResponseBytes'),
    maxHostCallBytes: positiveInteger(options.maxHostCallBytes, 1024 * 1024, 'maxHostCallBytes'),
    hostChannel: `tansu-function-host-calls-${randomUUID()}`,
  };
  const workerGraceMs = positiveInteger(options.workerGraceMs, 5000, 'workerGraceMs');
  const maxThreads = positiveInteger(
    options.maxWorkers,
    Math.min(2, availableParallelism()),
    'maxWorkers',
  );

  const pool = new Piscina({
    filename: new URL('./worker.ts', import.meta.url).href,
    minThreads: 1,
    maxThreads,
    concurrentTasksPerWorker: positiveInteger(
      options.concurrentTasksPerWorker,
      16,
      'concurrentTasksPerWorker',
    ),
    workerData: workerSettings,
    // Idle workers keep their event loop running, so late isolated-vm callbacks are handled.
    atomics: 'disabled',
  });

  // Host calls of every execution travel on one channel shared with the workers, instead of a
  // MessageChannel per execution: creating and transferring a port was the largest cost of
  // handing a warm call to a worker. Each execution is registered here under its own token.
  const executions = new Map<number, HostCalls>();
  let nextToken = 1;
  const hostChannel = new BroadcastChannel(workerSettings.hostChannel);
  hostChannel.unref();
  hostChannel.onmessage = (event) => {
    const message = event.data as HostCallMessage | HostCallReply;
    // Replies of this thread do not come back to it, but the workers' own messages reach
    // the other workers; only calls are handled here.
    if (!('argsJson' in message)) return;
    const host = executions.get(message.token);
    if (!host) return;
    void answerHostCall(host, message).then((reply) => {
      if (executions.has(message.token)) hostChannel.postMessage(reply);
    });
  };

  return {
    async execute(task) {
      checkTask(task);
      const token = nextToken++;
      executions.set(token, task.host);

      const workerTask: WorkerTask = {
        tenant: task.tenant,
        functionName: task.functionName,
        version: task.version,
        executionId: task.executionId,
        code: task.code,
        request: task.request,
        limits: task.limits,
        hostNames: Object.keys(task.host),
        hostToken: token,
      };
      // The worker's own watchdog ends every execution. This backstop only stops the caller
      // from waiting forever on a worker that stopped responding. It does not abort the
      // piscina task: piscina 5 never runs a second task on a worker busy with an abortable
      // one, so one spinning function would hold up every other call.
      let backstop: NodeJS.Timeout | undefined;
      const started = performance.now();
      const unanswered = new Promise<ExecutionResult>((resolve) => {
        backstop = setTimeout(() => {
          resolve({
            status: 'timeout',
            error: `Execution timed out after ${task.limits.timeoutMs} ms; its worker did not respond`,
            logs: [],
            durationMs: performance.now() - started,
          });
        }, task.limits.timeoutMs + workerGraceMs);
      });
      try {
        const run = pool.run(workerTask) as Promise<ExecutionResult>;
        // A worker failure after the backstop fired has no caller left to reject to.
        run.catch(() => undefined);
        return await Promise.race([run, unanswered]);
      } finally {
        clearTimeout(backstop);
        executions.delete(token);
      }
    },

    async prepare(task) {
      checkTask({ ...task, executionId: '', request: { method: 'GET', path: '/', query: {}, headers: {}, body: null }, host: {} });
      const prepareTask: PrepareTask = {
        prepare: true,
        tenant: task.tenant,
        functionName: task.functionName,
        version: task.version,
        code: task.code,
        limits: task.limits,
      };
      await pool.run(prepareTask);
    },

    async check(task) {
      checkTask({ ...task, executionId: '', request: { method: 'GET', path: '/', query: {}, headers: {}, body: null }, host: {} });
      const workerTask: CheckTask = {
        check: true,
        tenant: task.tenant,
        functionName: task.functionName,
        version: task.version,
        code: task.code,
        limits: task.limits,
      };
      return (await pool.run(workerTask)) as LoadFailure | undefined;
    },

    async idleIsolates() {
      const task: StatsTask = { stats: true };
      return (await pool.run(task)) as IdleIsolateStats;
    },

    async close() {
      await pool.destroy();
      hostChannel.close();
    },
  };
}

async function answerHostCall(host: HostCalls, message: HostCallMessage): Promise<HostCallReply> {
  const { worker, id, name } = message;
  const call = Object.hasOwn(host, name) ? host[name] : undefined;
  if (!call) return { worker, id, ok: false, message: `ctx.${name} is not available` };
  try {
    const args = JSON.parse(message.argsJson) as Parameters<typeof call>;
    const value = await call(...args);
    return { worker, id, ok: true, valueJson: JSON.stringify(value ?? null) ?? 'null' };
  } catch (error) {
    // Only the message crosses; the stack and cause stay out of the sandbox.
    const text = error instanceof Error ? error.message : `ctx.${name} failed`;
    return { worker, id, ok: false, message: text };
  }
}

function checkTask(task: ExecutionTask): void {
  const { timeoutMs, cpuMs, memoryMb } = task.limits;
  if (!(timeoutMs > 0) || !(cpuMs > 0) || !Number.isFinite(timeoutMs) || !Number.isFinite(cpuMs)) {
    throw new RangeError('limits.timeoutMs and limits.cpuMs must be positive numbers');
  }
  if (!Number.isInteger(memoryMb) || memoryMb < MIN_MEMORY_MB || memoryMb > MAX_MEMORY_MB) {
    throw new RangeError(
      `limits.memoryMb must be an integer from ${MIN_MEMORY_MB} to ${MAX_MEMORY_MB}, got ${memoryMb}`,
    );
  }
  for (const name of Object.keys(task.host)) {
    const segments = name.split('.');
    const valid =
      hostNamePattern.test(name) &&
      !reservedHostRoots.has(segments[0]!) &&
      !segments.some((segment) => reservedSegments.has(segment));
    if (!valid) throw new TypeError(`Host call name "${name}" is invalid or reserved`);
    if (typeof task.host[name] !== 'function') {
      throw new TypeError(`Host call "${name}" must be a function`);
    }
  }
}

function checkNodeSnapshotDisabled(): void {
  // isolated-vm 6 crashes the process when Node starts from its startup snapshot. Worker
  // threads cannot take the flag, so the process itself must be started with it.
  const flags = [...process.execArgv, ...(process.env.NODE_OPTIONS ?? '').split(/\s+/)];
  if (!flags.includes('--no-node-snapshot')) {
    throw new Error('The function runtime needs Node started with --no-node-snapshot');
  }
}

function positiveInteger(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isInteger(value) || value < 1) {
    throw new RangeError(`${name} must be a positive integer, got ${value}`);
  }
  return value;
}
